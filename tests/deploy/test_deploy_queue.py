"""The durable queue: atomic claims, leases, dead workers, and an error path that records ERROR."""

from __future__ import annotations

import logging
import socket
import threading
import time

from serving.deploy_queue import COMPLETE, ERROR, PENDING, DeployQueue, QueueWorker
from tests.support import run_coroutine, wait_for

log = logging.getLogger("test")


def test_concurrent_workers_claim_each_row_exactly_once(tmp_path):
    path = tmp_path / "queue.db"
    ids = {DeployQueue(path).enqueue("d", {"i": i}) for i in range(120)}
    claimed: list[str] = []
    lock = threading.Lock()

    def drain(worker: str) -> None:
        queue = DeployQueue(path)  # own connection per worker, as separate processes would have
        while (job := queue.claim(worker)) is not None:
            assert queue.complete(job, worker, 1.0, None)
            with lock:
                claimed.append(job.prediction_id)

    threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)
    assert DeployQueue(path).counts() == {COMPLETE: 120}


def test_expired_lease_is_reclaimed_and_the_stale_worker_cannot_finish(tmp_path):
    queue = DeployQueue(tmp_path / "q.db", lease_seconds=0.05)
    queue.enqueue("d", {})
    stale = queue.claim("old")
    assert queue.claim("new") is None  # leased
    fresh = wait_for(lambda: queue.claim("new"), "the lease to run out")
    assert fresh.prediction_id == stale.prediction_id and fresh.attempts == 2
    assert queue.complete(stale, "old", 1.0, None) is False
    assert queue.complete(fresh, "new", 2.0, None) is True
    assert queue.get(fresh.prediction_id).result == 2.0


def test_recover_releases_rows_of_dead_workers_only(tmp_path):
    queue = DeployQueue(tmp_path / "q.db")
    host = socket.gethostname()
    dead_id = queue.enqueue("d", {})
    live_id = queue.enqueue("d", {})
    assert queue.claim(f"{host}:999999999:dead").prediction_id == dead_id
    assert queue.claim(f"{host}:{__import__('os').getpid()}:live").prediction_id == live_id
    assert queue.recover() == 1
    assert queue.claim("next").prediction_id == dead_id


def test_worker_records_error_message_and_keeps_going(tmp_path):
    queue = DeployQueue(tmp_path / "q.db")

    def resolve(job):
        if job.request.get("bad"):

            def explode():
                raise ValueError("could not convert 'x'")

            return {"version_id": "v1"}, explode
        return {"version_id": "v1"}, lambda: 42.0

    worker = QueueWorker(queue, resolve, lambda: ["d"], log, idle_seconds=0.05)
    bad = queue.enqueue("d", {"bad": True})
    good = queue.enqueue("d", {})
    other = queue.enqueue("not-ready", {})
    worker.start()
    try:
        wait_for(lambda: queue.get(good).status != PENDING, "the good request to finish")
    finally:
        worker.stop()
    failed = queue.get(bad)
    assert (failed.status, failed.error, failed.model) == (
        ERROR,
        "ValueError: could not convert 'x'",
        {"version_id": "v1"},
    )
    assert (queue.get(good).status, queue.get(good).result) == (COMPLETE, 42.0)
    assert queue.get(other).status == PENDING  # its model is not loaded: it waits, it is not failed


def test_worker_wakes_on_enqueue_without_polling_delay(tmp_path):
    idle = threading.Event()

    class Watched(DeployQueue):
        def claim(self, worker_id, deployments=None):
            job = super().claim(worker_id, deployments)
            if job is None:
                idle.set()  # the worker found nothing and goes to sleep
            return job

    queue = Watched(tmp_path / "q.db")
    # Idle for an hour: only the wake-up can get the request done within the wait below.
    worker = QueueWorker(queue, lambda job: ({}, lambda: 1.0), lambda: ["d"], log, idle_seconds=3600)
    worker.start()
    try:
        assert idle.wait(60)
        prediction_id = queue.enqueue("d", {})
        worker.wake()
        wait_for(lambda: queue.get(prediction_id).status == COMPLETE, "the woken worker", timeout=120)
    finally:
        worker.stop()


def test_long_poll_wakes_on_the_outcome_and_times_out_on_a_pending_row(tmp_path):
    queue = DeployQueue(tmp_path / "q.db")
    release = threading.Event()
    # No periodic re-read within the test's waits: only the worker's notification can end the second one before
    # its 120 s deadline.
    worker = QueueWorker(
        queue,
        lambda job: ({}, lambda: 2.0 if release.wait(60) else 0.0),
        lambda: ["d"],
        log,
        idle_seconds=3600,
        recheck_seconds=3600,
    )
    worker.start()

    async def scenario():
        prediction_id = queue.enqueue("d", {})
        worker.wake()
        started = time.monotonic()
        still_pending = await worker.wait_finished(prediction_id, 0.3)  # the model is held back: times out
        timed_out_after = time.monotonic() - started
        threading.Timer(0.2, release.set).start()
        started = time.monotonic()
        done = await worker.wait_finished(prediction_id, 120)
        return still_pending, timed_out_after, done, time.monotonic() - started, await worker.wait_finished("x", 1)

    try:
        still_pending, timed_out_after, done, waited, missing = run_coroutine(scenario())
    finally:
        release.set()
        worker.stop()
    assert still_pending.status == PENDING and timed_out_after >= 0.3
    # Woken by the outcome: after the release, and before the deadline that a missed notification would wait out.
    assert done.status == COMPLETE and done.result == 2.0 and 0.15 < waited < 120
    assert missing is None


def _open_queue_at(path: str, start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))
    DeployQueue(path).close()


def test_processes_opening_a_new_queue_file_at_once_all_start(tmp_path):
    # Two API processes started together on one state folder (bench_inference_log.py's servers, `uvicorn
    # --workers 2`) both switch the fresh file to WAL; SQLite answers the second "database is locked" without
    # waiting for its busy timeout, and that API exited at start.
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    for attempt in range(3):
        path = str(tmp_path / f"queue-{attempt}.db")
        start_at = time.time() + 1.5  # after the spawned interpreters have imported
        processes = [context.Process(target=_open_queue_at, args=(path, start_at)) for _ in range(6)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        assert [process.exitcode for process in processes] == [0] * 6
