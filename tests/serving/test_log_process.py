"""The inference log written by a process of its own (serving.log_process, serving.log_writer): real writer
processes fed by a real event loop; killed, frozen and given a failing store."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel

import serving.log_process as log_process
from resources.object_store import LocalObjectStore
from serving.inference_log import InferenceLog
from serving.log_rows import encode, to_json
from tests.serving.test_inference_log import log_files, logged_ids


def process_log(store, **options) -> InferenceLog:
    return InferenceLog(store, writer="process", **options)


async def until(condition, what: str, timeout: float = 30.0) -> None:
    """Wait on the loop (the writer's confirmations are read there) until `condition()` holds."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"waited {timeout}s for {what}")


def answer(log: InferenceLog, i: int = 0) -> str:
    return log.record("pistachio", "/classify", b'{"Area":%d}' % i, b'{"Type":"Siit_Pistachio"}', "P", "3", '{"v":3}')


def test_rows_are_written_by_the_writer_process_and_found_at_every_moment(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    log = process_log(store, flush_seconds=0.1)
    missed = []

    async def serve():
        log.start(asyncio.get_running_loop())
        ids = []
        for burst in range(30):  # answers come in bursts while earlier ones are handed over, written, confirmed
            ids += [answer(log, burst * 100 + i) for i in range(100)]
            missed.extend(pid for pid in ids[::37] + ids[-3:] if log.find(pid, ["pistachio"]) is None)
            await asyncio.sleep(0.01)
        await until(lambda: log.rows_written == len(ids), "every row confirmed")
        writer = log._process.process
        assert log.written_file(ids[0]).startswith("pistachio/inference_log/hour=")  # the confirmed file's name
        assert log.find(ids[7], ["pistachio"])["inputs"] == '{"Area":7}'  # read from that file
        last = answer(log)
        await log.aclose()
        return [*ids, last], writer

    ids, writer = asyncio.run(serve())
    assert missed == []
    assert sorted(logged_ids(store, "pistachio")) == sorted(ids)  # each once
    assert log.rows_written == len(ids) and log.unwritten_rows() == 0
    assert writer.returncode == 0  # the writer ended with its pipe, having written the rest
    row = log.find(ids[5], ["pistachio"])
    assert (row["inputs"], row["output"], row["lineage"]) == ('{"Area":5}', '{"Type":"Siit_Pistachio"}', '{"v":3}')


class Answer(BaseModel):
    survived: bool
    probability: float
    prediction_id: str | None = None


def test_answers_marshal_cannot_carry_are_logged_as_the_thread_writer_logs_them(tmp_path):
    import numpy as np

    lineage = Answer(survived=True, probability=0.5)  # any pydantic object: logged as its JSON
    records = [
        ("titanic", "/titanic/predict", {"age": np.float64(22.0)}, Answer(survived=False, probability=0.25), lineage),
        ("steam", "/steam/x", {"year": 2015}, [{"genre": "Action", "hours": 3}], None),
        ("pistachio", "/classify", b'{"Area":1}', b'{"Type":"Siit_Pistachio"}', '{"v":3}'),
    ]
    store = LocalObjectStore(root=str(tmp_path / "process"))
    log = process_log(store)

    async def serve():
        log.start(asyncio.get_running_loop())
        ids = [
            log.record(system, route, inputs, output, "M", 7, line) for system, route, inputs, output, line in records
        ]
        await log.aclose()
        return ids

    ids = asyncio.run(serve())
    for pid, (system, route, inputs, output, line) in zip(ids, records, strict=True):
        [key] = log_files(store, system)
        [written] = pq.read_table(tmp_path / "process" / key).to_pylist()
        expected = encode((pid, 0, system, route, "M", 7, inputs, output, line))
        for column in ("prediction_id", "inputs", "output", "lineage", "model_version"):
            assert written[column] == expected[column], column
    assert to_json(records[0][3]) == '{"survived":false,"probability":0.25}'


def test_a_writer_killed_mid_work_is_replaced_and_no_row_is_lost(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    log = process_log(store, flush_seconds=0.2)

    async def serve():
        log.start(asyncio.get_running_loop())
        ids = []
        for burst in range(40):
            ids += [answer(log, burst * 50 + i) for i in range(50)]
            if burst == 20:  # rows handed over but not yet written, more coming
                assert log._process.rows() > 0
                first = log._process.process
                os.kill(first.pid, signal.SIGKILL)
            await asyncio.sleep(0.01)
        await until(lambda: log._process.restarts == 1 and log.rows_written >= len(ids), "the new writer's files")
        second = log._process.process
        await log.aclose()
        return ids, first, second

    ids, first, second = asyncio.run(serve())
    assert first.returncode == -signal.SIGKILL and second.returncode == 0
    written = logged_ids(store, "pistachio")
    # Every row once, but for those the dead writer wrote and had not yet confirmed: written again (the ingest keeps
    # one row per id).
    assert set(written) == set(ids)
    print(f"{len(written) - len(ids)} row(s) written twice after the kill")


def test_a_writer_that_dies_just_before_the_shutdown_is_replaced_to_write_the_rest(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    log = process_log(store, flush_seconds=3600)  # only the shutdown writes

    async def serve():
        log.start(asyncio.get_running_loop())
        ids = [answer(log, i) for i in range(300)]
        await until(lambda: log._process.rows() == len(ids), "the rows handed over")
        writer = log._process.process
        # Dead within its first 2 s (a restart would otherwise wait), and not yet noticed: no await in between.
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        ids.append(answer(log))
        await log.aclose()
        return ids

    ids = asyncio.run(serve())
    assert sorted(logged_ids(store, "pistachio")) == sorted(ids) and log._process is None


def test_a_writer_starved_of_cpu_gets_normal_priority_until_it_has_caught_up(tmp_path, monkeypatch):
    monkeypatch.setattr(log_process, "STARVED_SECONDS", 0.3)
    store = LocalObjectStore(root=str(tmp_path))
    log = process_log(store, flush_seconds=0.1)
    policies = []

    async def serve():
        log.start(asyncio.get_running_loop())
        ids = [answer(log)]  # the writer starts with the first answer
        await until(lambda: log._process.process is not None, "the writer started")
        writer = log._process.process
        await until(lambda: os.sched_getscheduler(writer.pid) == os.SCHED_IDLE, "the writer at idle priority")
        os.kill(writer.pid, signal.SIGSTOP)  # as if other work took every CPU
        ids += [answer(log, i) for i in range(100)]
        await until(lambda: os.sched_getscheduler(writer.pid) == os.SCHED_OTHER, "normal priority")
        policies.append(os.sched_getscheduler(writer.pid))
        os.kill(writer.pid, signal.SIGCONT)
        await until(lambda: log.rows_written == len(ids), "the rows written")
        await until(lambda: os.sched_getscheduler(writer.pid) == os.SCHED_IDLE, "idle priority again")
        await log.aclose()
        return ids

    ids = asyncio.run(serve())
    assert policies == [os.SCHED_OTHER] and sorted(logged_ids(store, "pistachio")) == sorted(ids)


def test_a_failing_store_keeps_the_rows_in_the_writer_and_findable_until_it_recovers(tmp_path):
    root = tmp_path / "objects"
    root.write_bytes(b"a file where the store's folder should be")
    log = process_log(LocalObjectStore(root=str(root)), flush_seconds=0.1)

    async def serve():
        log.start(asyncio.get_running_loop())
        ids = [answer(log, i) for i in range(200)]
        await until(lambda: log.failed_writes >= 2, "failed writes")
        assert log.rows_written == 0 and log.unwritten_rows() == len(ids)
        assert all(log.find(pid, ["pistachio"]) for pid in ids[::20])  # still answered from memory
        root.unlink()
        Path(root).mkdir()
        await until(lambda: log.rows_written == len(ids), "the rows written once the store works")
        assert log.unwritten_rows() == 0
        await log.aclose()
        return ids

    ids = asyncio.run(serve())
    assert sorted(logged_ids(LocalObjectStore(root=str(root)), "pistachio")) == sorted(ids)


def test_an_api_that_logs_nothing_starts_no_writer(tmp_path):
    log = process_log(LocalObjectStore(root=str(tmp_path)))

    async def serve():
        log.start(asyncio.get_running_loop())
        await asyncio.sleep(0.1)  # five rounds of the sender
        assert log._process.process is None
        await log.aclose()

    asyncio.run(serve())
    assert log_files(log.store, "pistachio") == []


def test_a_store_the_writer_cannot_rebuild_is_written_from_a_thread(tmp_path):
    class Unbuildable(LocalObjectStore):  # defined in a function: the writer process cannot import it
        pass

    store = Unbuildable(root=str(tmp_path))
    log = process_log(store)

    async def serve():
        log.start(asyncio.get_running_loop())
        assert log._process is None
        pid = answer(log)
        await log.aclose()
        return pid

    pid = asyncio.run(serve())
    assert logged_ids(store, "pistachio") == [pid]


def test_the_api_writes_through_a_process_unless_told_thread(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    assert InferenceLog.from_env(store, {}).writer == "process"
    assert InferenceLog.from_env(store, {"MLOPS_INFERENCE_LOG_WRITER": " Thread "}).writer == "thread"
    with pytest.raises(ValueError, match="MLOPS_INFERENCE_LOG_WRITER"):
        InferenceLog.from_env(store, {"MLOPS_INFERENCE_LOG_WRITER": "fork"})
