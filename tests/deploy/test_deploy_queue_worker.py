"""The queue's edges that the claim tests do not reach: whose claims `recover` may release, how long messages are
stored, what the worker's thread does on failures and shutdown, and what it tells the operator."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from serving.deploy_queue import COMPLETE, PENDING, DeployQueue, Prediction, QueueWorker
from tests.support import run_coroutine, wait_for

log = logging.getLogger("test.deploy_queue_worker")
HOST = socket.gethostname()
LIVE_UNTIL_STDIN_CLOSES = """
import signal, sys
signal.pthread_sigmask(signal.SIG_UNBLOCK, signal.valid_signals())
for number in signal.valid_signals():
    try:
        signal.signal(number, signal.SIG_DFL)
    except (OSError, ValueError):  # SIGKILL, SIGSTOP
        pass
print("ready", flush=True)
sys.stdin.read()
print("stdin closed")
"""


def test_recover_releases_every_row_of_every_dead_worker_and_nothing_else(tmp_path):
    queue = DeployQueue(tmp_path / "q.db")
    rows = [queue.enqueue("d", {"i": i}) for i in range(6)]
    # A process that is alive until the test closes its stdin: recovery may probe it but must not disturb it. It
    # takes every signal's default action, even one its starter ignores (nohup: SIGHUP), so any signal shows.
    live = subprocess.Popen(
        [sys.executable, "-c", LIVE_UNTIL_STDIN_CLOSES], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert live.stdout.readline() == "ready\n"  # its signal actions are set: a signal sent from here on shows
    try:
        for worker in (
            f"{HOST}:999999998:a",
            f"{HOST}:999999998:a",
            f"{HOST}:999999999:b",  # dead, this host
            "elsewhere:999999999:c",  # another host's process cannot be checked from here
            f"{HOST}:not-a-pid:d",  # not a worker id this code writes
            f"{HOST}:{live.pid}:e",
        ):  # alive
            assert queue.claim(worker) is not None
        assert queue.recover() == 3
    finally:
        live.stdin.close()
        # It ended on its own: recovery sent it no signal. Read from its output, not its exit status, which a
        # parent reaping every child (mutmut's worker does) takes first, leaving 0 to Popen.wait.
        assert live.stdout.read() == "stdin closed\n"
        live.wait(timeout=60)
    claimed_again = {queue.claim("next").prediction_id for _ in range(3)}
    assert claimed_again == set(rows[:3]) and queue.claim("next") is None


def test_a_process_this_user_may_not_signal_counts_as_alive(tmp_path, monkeypatch):
    """Another user's process under that pid (the tests run as root, so os.kill is made to answer as for them)."""
    queue = DeployQueue(tmp_path / "q.db")
    queue.enqueue("d", {})
    queue.claim(f"{HOST}:12345:x")

    def refuse(pid, signal):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", refuse)
    assert queue.recover() == 0


def test_an_error_message_is_stored_up_to_2000_characters(tmp_path):
    queue = DeployQueue(tmp_path / "q.db")
    queue.enqueue("d", {})
    job = queue.claim("w")
    assert queue.fail(job, "w", "x" * 1999 + "yz")
    assert queue.get(job.prediction_id).error == "x" * 1999 + "y"


def test_close_releases_this_threads_connection_and_the_queue_reopens_on_use(tmp_path):
    queue = DeployQueue(tmp_path / "q.db")
    prediction_id = queue.enqueue("d", {})
    connection = queue._connect()
    closing = threading.Thread(target=queue.close)  # a thread that never opened one: nothing to do
    closing.start()
    closing.join()
    connection.execute("SELECT 1")  # still open
    queue.close()
    with pytest.raises(sqlite3.ProgrammingError):
        connection.execute("SELECT 1")
    assert queue.get(prediction_id).status == PENDING


def test_the_serving_workers_timings_are_pinned(tmp_path):
    """Serving builds its worker and queue with these defaults: rows of other processes are picked up within a
    second, a long poll re-reads its row four times a second, and a row claimed by a worker that hangs is claimed
    again after a minute."""
    worker = QueueWorker(None, None, None, log)
    assert (worker.idle_seconds, worker.recheck_seconds) == (1.0, 0.25)
    assert DeployQueue(tmp_path / "q.db").lease_seconds == 60.0


def test_a_row_reads_back_whole_before_and_after_its_outcome(tmp_path):
    """Every field `get` returns, from a queue file in folders that do not exist yet (a fresh MLOPS_HOME)."""
    queue = DeployQueue(tmp_path / "fresh" / "home" / "q.db")
    started = time.time()
    prediction_id = queue.enqueue("paris_airbnb_price", {"rooms": 2})
    pending = queue.get(prediction_id)
    assert pending == Prediction(
        prediction_id, "paris_airbnb_price", PENDING, {"rooms": 2}, None, None, None, 0, pending.created_at, None
    )
    job = queue.claim("w")
    assert queue.complete(job, "w", 123.5, {"version_id": "v3"})
    done = queue.get(prediction_id)
    assert done == Prediction(
        prediction_id,
        "paris_airbnb_price",
        COMPLETE,
        {"rooms": 2},
        123.5,
        None,
        {"version_id": "v3"},
        1,
        pending.created_at,
        done.completed_at,
    )
    assert started <= done.created_at <= done.completed_at <= time.time()
    assert queue.get("no-such-prediction") is None


def test_each_thread_keeps_one_connection(tmp_path):
    """One SQLite connection per thread, opened once and reused (a connection per call would leak them)."""
    queue = DeployQueue(tmp_path / "q.db")
    mine = queue._connect()
    queue.enqueue("d", {})
    assert queue._connect() is mine
    theirs = []
    other = threading.Thread(target=lambda: theirs.extend([queue._connect(), queue._connect()]))
    other.start()
    other.join()
    assert theirs[0] is theirs[1] and theirs[0] is not mine


def test_an_empty_model_record_is_stored_as_none(tmp_path):
    """Only a model record with content is stored; an empty one reads back as no record, like a missing one."""
    queue = DeployQueue(tmp_path / "q.db")
    for record in ({}, None):
        prediction_id = queue.enqueue("d", {})
        assert queue.complete(queue.claim("w"), "w", 1.0, record)
        assert queue.get(prediction_id).model is None


def test_the_worker_thread_sets_up_recovers_and_stops(tmp_path, caplog):
    queue = DeployQueue(tmp_path / "q.db")
    orphan = queue.enqueue("d", {"i": 1})
    queue.claim(f"{HOST}:999999999:dead")  # its worker died: the next worker must not wait out the lease
    set_up_in = []
    worker = QueueWorker(
        queue,
        lambda job: ({}, lambda: 1.0),
        lambda: ["d"],
        log,
        idle_seconds=0.05,
        thread_setup=lambda: set_up_in.append(threading.current_thread().name),
    )
    with caplog.at_level(logging.INFO, logger=log.name):
        worker.start()
        try:
            wait_for(lambda: queue.get(orphan).status == COMPLETE, "the released row", timeout=30)
            # Not woken: a row enqueued by another process is found by the idle re-check.
            later = queue.enqueue("d", {"i": 2})
            wait_for(lambda: queue.get(later).status == COMPLETE, "the idle re-check", timeout=30)
            threads = [t for t in threading.enumerate() if t.name == "deploy-queue-worker"]
            # Named for thread dumps; a daemon, so it never holds the serving process open on exit.
            assert len(threads) == 1 and threads[0].daemon
        finally:
            worker.stop()
    assert not threads[0].is_alive()  # stop returns once the thread has ended
    assert set_up_in == ["deploy-queue-worker"]
    assert "released 1 prediction(s) claimed by a dead worker" in caplog.messages
    QueueWorker(queue, None, None, log).stop()  # stopping a worker that never started is harmless


def test_a_failing_iteration_is_logged_and_waits_for_the_next_wake_up(tmp_path, caplog):
    woken = threading.Event()
    claims_before_wake = []

    class Broken(DeployQueue):
        def claim(self, worker_id, deployments=None):
            claims_before_wake.append(not woken.is_set())
            if len(claims_before_wake) == 1:
                raise sqlite3.OperationalError("disk I/O error")
            return super().claim(worker_id, deployments)

    queue = Broken(tmp_path / "q.db")
    worker = QueueWorker(queue, lambda job: ({}, lambda: 1.0), lambda: ["d"], log, idle_seconds=3600)
    with caplog.at_level(logging.INFO, logger=log.name):
        worker.start()
        try:
            wait_for(lambda: "queue worker iteration failed" in caplog.messages, "the logged failure")
            prediction_id = queue.enqueue("d", {})
            woken.set()
            worker.wake()
            wait_for(lambda: queue.get(prediction_id).status == COMPLETE, "the woken worker", timeout=30)
        finally:
            worker.stop()
    # One claim before the wake-up: a failing iteration sleeps like an idle one instead of spinning.
    assert claims_before_wake.count(True) == 1
    assert any(record.exc_info for record in caplog.records if record.message == "queue worker iteration failed")


def test_an_outcome_that_cannot_be_written_is_logged_and_the_row_stays_pending(tmp_path, caplog):
    class ReadOnly(DeployQueue):
        def _finish(self, *args, **kwargs):
            raise sqlite3.OperationalError("attempt to write a readonly database")

    queue = ReadOnly(tmp_path / "q.db")
    failing = queue.enqueue("d", {"bad": True})
    passing = queue.enqueue("d", {})

    def resolve(job):
        if job.request.get("bad"):
            raise ValueError("no such column")
        return {}, lambda: 1.0

    worker = QueueWorker(queue, resolve, lambda: ["d"], log)
    with caplog.at_level(logging.INFO, logger=log.name):
        assert worker.process_one() and worker.process_one()
    assert caplog.messages == [
        f"could not record the error of {failing}; it stays PENDING and will be retried",
        f"could not record prediction {passing}; it stays PENDING and will be retried",
    ]
    assert all(record.exc_info for record in caplog.records)
    assert {queue.get(failing).status, queue.get(passing).status} == {PENDING}


def test_long_polls_leave_no_waiter_behind(tmp_path):
    queue = DeployQueue(tmp_path / "q.db")
    worker = QueueWorker(queue, None, lambda: [], log, recheck_seconds=0.01)
    prediction_id = queue.enqueue("d", {})

    async def polls():
        return await asyncio.gather(*(worker.wait_finished(prediction_id, 0.05) for _ in range(5)))

    assert [row.status for row in run_coroutine(polls())] == [PENDING] * 5
    assert not worker._waiters


def test_a_request_that_kept_killing_its_worker_ends_as_error_after_three_attempts(tmp_path):
    queue = DeployQueue(tmp_path / "q.db", lease_seconds=-1)  # every lease has run out: crashed workers' rows
    third, fourth = queue.enqueue("a", {"i": 3}), queue.enqueue("b", {"i": 4})
    for attempts, deployment in ((2, "a"), (3, "b")):
        for _ in range(attempts):
            assert queue.claim(f"{HOST}:999999999:crashed", [deployment]) is not None
    predicted = []
    worker = QueueWorker(
        queue, lambda job: ({}, lambda: predicted.append(job.prediction_id) or 1.0), lambda: ["a", "b"], log
    )
    assert worker.process_one() and worker.process_one()  # busy both times: no idle wait after giving up
    assert predicted == [third]  # its third attempt still runs
    assert (queue.get(third).status, queue.get(third).result) == (COMPLETE, 1.0)
    gave_up = queue.get(fourth)
    assert (gave_up.status, gave_up.error, gave_up.attempts) == (
        "ERROR",
        "gave up after 3 attempts that did not finish",
        4,
    )


def test_the_answering_model_is_stored_with_the_outcome(tmp_path):
    queue = DeployQueue(tmp_path / "q.db")
    prediction_id = queue.enqueue("paris_airbnb_price", {})
    resolved_for = []

    def resolve(job):  # serving picks the deployment's model by the job's deployment name
        resolved_for.append(job.deployment)
        return {"version_id": "v7"}, lambda: 1.0

    worker = QueueWorker(queue, resolve, lambda: ["paris_airbnb_price"], log)
    assert worker.process_one()
    assert resolved_for == ["paris_airbnb_price"]
    assert queue.get(prediction_id).model == {"version_id": "v7"}
