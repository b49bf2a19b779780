"""The inference log's writer: ids, files per system and hour, lookups, a failing store, the flush triggers."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from mlops_assets.common.log_format import COLUMNS
from resources import build_object_store
from resources.object_store import LocalObjectStore
from serving.inference_log import YIELD_EVERY, InferenceLog, id_time, new_prediction_id
from serving.log_rows import encode, parquet_bytes, parquet_bytes_of, record_batch
from tests.support import wait_for


def log_files(store, system: str) -> list[str]:
    return [info.key for info in store.list_objects(f"{system}/inference_log/") if info.key.endswith(".parquet")]


def logged_ids(store, system: str) -> list[str]:
    return [
        pid
        for key in log_files(store, system)
        for pid in pq.read_table(io.BytesIO(store.get_bytes(key)))["prediction_id"].to_pylist()
    ]


def test_ids_are_uuid7_hex_naming_their_millisecond():
    now_ns = time.time_ns()
    prediction_id, logged_us = new_prediction_id(now_ns)
    assert len(prediction_id) == 32 and int(prediction_id, 16) >= 0
    assert prediction_id[12] == "7" and prediction_id[16] in "89ab"  # version 7, RFC variant
    assert abs(id_time(prediction_id).timestamp() - now_ns / 1e9) < 0.001
    assert logged_us == now_ns // 1000
    assert len({new_prediction_id()[0] for _ in range(1000)}) == 1000
    assert id_time("0" * 32) is None  # a uuid4-style id (deploy's queue) names no time


def test_the_writers_column_by_column_file_holds_what_the_row_by_row_encoding_holds():
    from serving.lineage import Lineage

    champion = Lineage(model_name="m", model_version="3", alias="champion")
    challenger = Lineage(model_name="m", model_version="4", alias="challenger")
    shapes = [
        ({"a": 1.5, "b": [1, 2]}, b'{"Type":"Siit"}', champion, "3"),
        ({"user": "Alice"}, '["x", "y"]', {"snapshot_id": "s1"}, None),
        ({}, challenger, challenger, 4),  # a pydantic answer, an int version
        (None, None, None, "7"),
    ]
    records = []
    for i in range(3 * YIELD_EVERY + 5):  # chunk boundaries, and lineage objects reused across chunks
        given, output, lineage, version = shapes[i % len(shapes)]
        pid, logged_us = new_prediction_id()
        records.append((pid, logged_us, "pistachio", "/classify", "m", version, given, output, lineage))
    expected = pq.read_table(io.BytesIO(parquet_bytes([encode(r) for r in records])))
    lineages = {}
    batches = [record_batch(records[i : i + YIELD_EVERY], lineages) for i in range(0, len(records), YIELD_EVERY)]
    assert len(lineages) == 4  # each lineage object (and None) serialized once for all three chunks
    written = pq.read_table(io.BytesIO(parquet_bytes_of(batches)))
    assert written.schema == expected.schema
    assert written.to_pylist() == expected.to_pylist()
    assert json.loads(written["lineage"][2].as_py())["model_version"] == "4"


def test_flush_writes_one_file_per_system_and_hour_with_the_contract_columns(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    log = InferenceLog(store)
    first = log.record(
        "pistachio", "/classify", {"area": 1.0}, b'{"Type":"Siit_Pistachio"}', "P", "3", {"alias": "champion"}
    )
    second = log.record("pistachio", "/classify", {"area": 2.0}, b'{"Type":"Kirmizi_Pistachio"}', "P", "3")
    other = log.record(
        "steam", "/steam/sentiment_analysis/{year}", {"year": "2015"}, b'{"Negative":1}', "steam", "snap-1"
    )
    assert log_files(store, "pistachio") == []  # nothing is written on the answer path
    assert log.flush() == 3
    [key] = log_files(store, "pistachio")
    hour = id_time(first)
    assert key.startswith(f"pistachio/inference_log/hour={hour:%Y-%m-%d-%H}/") and key.endswith(".parquet")
    table = pq.read_table(io.BytesIO(store.get_bytes(key)))
    assert table.column_names == list(COLUMNS)
    assert str(table.schema.field("logged_at").type) == "timestamp[us, tz=UTC]"
    rows = table.to_pylist()
    assert [r["prediction_id"] for r in rows] == [first, second]
    assert json.loads(rows[0]["inputs"]) == {"area": 1.0}
    assert json.loads(rows[0]["output"]) == {"Type": "Siit_Pistachio"}
    assert json.loads(rows[0]["lineage"]) == {"alias": "champion"} and rows[1]["lineage"] is None
    assert rows[0]["logged_at"] == id_time(first).replace(microsecond=rows[0]["logged_at"].microsecond)
    assert logged_ids(store, "steam") == [other]
    assert log.flush() == 0 and len(log_files(store, "pistachio")) == 1  # appended, never rewritten


def test_find_reads_the_buffer_this_process_and_the_files_of_other_processes(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    log = InferenceLog(store)
    pid = log.record("titanic", "/titanic/predict", {"pclass": 1}, {"survived": True}, "titanic_modal", "2")
    assert log.find(pid, ["titanic"])["route"] == "/titanic/predict"  # still buffered
    log.flush()
    assert json.loads(log.find(pid, ["titanic"])["output"]) == {"survived": True}  # through this process's index
    # A process that never saw the id (another worker, after a restart) finds it from the hour its id names.
    fresh = InferenceLog(store)
    assert fresh.find(pid, ["steam", "titanic"])["model_version"] == "2"
    assert fresh.find(new_prediction_id()[0], ["steam", "titanic"]) is None


def test_ids_without_time_are_found_through_a_locator(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    log = InferenceLog(store)
    queue_id = "4" * 32
    log.record("deploy", "/api/wine/predict", {"x": 1}, {"value": 2.0}, "wine:m.skops", "v1", prediction_id=queue_id)
    log.flush()
    fresh = InferenceLog(store)
    assert fresh.find(queue_id, ["deploy"]) is None  # no time in a uuid4: nowhere to look
    fresh.locators.append(lambda pid: ("deploy", datetime.now(UTC)) if pid == queue_id else None)
    assert json.loads(fresh.find(queue_id, ["deploy"])["output"]) == {"value": 2.0}


def test_a_failing_store_fails_no_answer_and_loses_no_row_once_it_recovers(tmp_path):
    blocked = tmp_path / "objects"
    blocked.write_bytes(b"not a folder")  # every write below it fails, as a real store outage would
    store = LocalObjectStore(root=str(blocked))
    log = InferenceLog(store, max_pending_rows=5)
    ids = [log.record("scones", "/scones/classify", {"width": i}, {"confidence": 0.9}) for i in range(3)]
    assert log.flush() == 0 and log.failed_writes == 1
    assert log.find(ids[0], ["scones"])["inputs"] == '{"width":0}'  # kept in memory, still found
    ids += [log.record("scones", "/scones/classify", {"width": i}, {}) for i in range(3, 7)]
    log.flush()
    assert log.dropped_rows == 2  # bounded memory: the oldest two went, and were counted
    blocked.unlink()
    assert log.flush() == 5
    assert sorted(logged_ids(store, "scones")) == sorted(ids[2:])


def test_the_writer_thread_flushes_on_time_and_on_size_and_stop_writes_the_rest(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    timed = InferenceLog(store, flush_seconds=0.05)
    timed.start()
    try:
        pid = timed.record("steam", "/steam/x", {}, b"[]")
        wait_for(lambda: logged_ids(store, "steam") == [pid], "the timed flush")
    finally:
        timed.stop()
    sized = InferenceLog(store, flush_seconds=3600, buffer_rows=10)
    sized.start()
    try:
        ids = [sized.record("pistachio", "/classify", {}, b"{}") for _ in range(10)]
        wait_for(lambda: sorted(logged_ids(store, "pistachio")) == sorted(ids), "the size-triggered flush")
        late = sized.record("pistachio", "/classify", {}, b"{}")
        assert late not in logged_ids(store, "pistachio")
    finally:
        sized.stop()  # what the app's lifespan calls on shutdown
    assert late in logged_ids(store, "pistachio")


def test_off_still_answers_with_ids_but_writes_nothing(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    log = InferenceLog.from_env(store, {"MLOPS_INFERENCE_LOG": "off"})
    log.start()
    assert len(log.record("steam", "/steam/x", {}, b"[]")) == 32
    log.stop()
    assert log_files(store, "steam") == []
    with pytest.raises(ValueError, match="MLOPS_INFERENCE_LOG"):
        InferenceLog.from_env(store, {"MLOPS_INFERENCE_LOG": "maybe"})


@pytest.mark.s3
def test_the_log_is_written_and_found_on_s3(s3_env, settings):
    store = build_object_store(settings)
    log = InferenceLog(store)
    pid = log.record("pistachio", "/classify", {"area": 3.0}, b'{"Type":"Siit_Pistachio"}', "P", "1")
    assert log.flush() == 1
    assert store.uri(log_files(store, "pistachio")[0]).startswith(f"s3://{settings.s3_bucket}/pistachio/inference_log/")
    assert InferenceLog(store).find(pid, ["pistachio"])["inputs"] == '{"area":3.0}'


def test_on_the_event_loop_rows_are_encoded_between_requests_and_written_by_a_worker_thread(tmp_path):
    import asyncio
    import threading

    writers = set()

    class RecordingStore(LocalObjectStore):
        def put_bytes(self, key, data, content_type=None):
            writers.add(threading.current_thread().name)
            return super().put_bytes(key, data, content_type)

    store = RecordingStore(root=str(tmp_path))
    log = InferenceLog(store, flush_seconds=0.1)

    async def serve() -> tuple[list[str], list[str], str]:
        log.start(asyncio.get_running_loop())
        first = [log.record("pistachio", "/classify", b'{"a":1}', b'{"Type":"Siit"}') for _ in range(3 * YIELD_EVERY)]
        await asyncio.sleep(0)
        assert log.find(first[0], ["pistachio"])["inputs"] == '{"a":1}'  # still buffered: found
        for _ in range(200):  # the loop's writer task encodes, then a worker thread writes
            await asyncio.sleep(0.01)
            if len(logged_ids(store, "pistachio")) == len(first):
                break
        assert sorted(logged_ids(store, "pistachio")) == sorted(first)  # written while serving, not at shutdown
        loop_thread = threading.current_thread().name
        last = [log.record("pistachio", "/classify", b"{}", b"{}")]
        await log.aclose()  # the app's shutdown: what is left is written
        return first, last, loop_thread

    first, last, loop_thread = asyncio.run(serve())
    assert sorted(logged_ids(store, "pistachio")) == sorted(first + last)
    assert writers and loop_thread not in writers  # files were never written on the event loop
    assert log.written_file(first[0]).startswith("pistachio/inference_log/hour=")
    assert log.unwritten_rows() == 0 and log.rows_written == len(first) + 1


def test_recent_ids_are_forgotten_a_whole_file_at_a_time_and_still_found_in_the_store(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    log = InferenceLog(store, recent_ids=3)
    old = [log.record("steam", "/steam/x", {}, b"[]") for _ in range(2)]
    log.flush()
    new = [log.record("steam", "/steam/x", {}, b"[]") for _ in range(3)]
    log.flush()
    assert log.written_file(old[0]) is None and log.written_file(new[0]) is not None
    assert log.find(old[0], ["steam"])["prediction_id"] == old[0]  # from the hour's files instead


def test_an_answer_is_found_at_every_moment_while_the_writer_encodes_and_writes(tmp_path, monkeypatch):
    # GET /predictions/{id} right after the answer: the row is in the buffer, in an encoded batch, being written
    # or written, and must be found wherever it is while the writer moves it (the Steam API test caught a miss).
    import serving.inference_log as module

    log = InferenceLog(LocalObjectStore(root=str(tmp_path)))
    ids = [log.record("steam", "/steam/x", {"i": i}, b"[]") for i in range(2 * YIELD_EVERY + 3)]
    missed = []

    def look(stage: str) -> None:  # a request arriving while the writer is at `stage`
        missed.extend((stage, pid) for pid in ids if log.find(pid, ["steam"]) is None)

    encode, write = module.record_batch, module.parquet_bytes_of
    monkeypatch.setattr(module, "record_batch", lambda *args: (look("encoding"), encode(*args))[1])
    monkeypatch.setattr(module, "parquet_bytes_of", lambda batches: (look("writing"), write(batches))[1])
    assert log.flush() == len(ids)
    look("written")
    assert missed == []
