"""The shared deploy queue on a real PostgreSQL, in one process: many claimers, each row claimed exactly once;
dead claimers released at once, expired leases re-claimed, late outcomes refused, long polls woken by the server.

The same promises as the SQLite queue's tests (tests/serving/test_deploy_queue_claims.py), through the same
`QueueWorker`, so either backend can sit under the API and the consumers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resources.settings import PlatformSettings
from serving.deploy_queue import COMPLETE, ERROR, MAX_ATTEMPTS, PENDING, DeployQueue, QueueWorker
from serving.queue_backend import open_deploy_queue
from tests.support import wait_for

psycopg2 = pytest.importorskip("psycopg2")
from serving.deploy_queue_pg import TABLE, CompletionWaits, PgDeployQueue  # noqa: E402

log = logging.getLogger("test")


@pytest.fixture(scope="module")
def queue_url(postgres) -> str:
    postgres.create_database("queue_unit")
    return postgres.url("queue_unit")


@pytest.fixture
def queue(queue_url):
    """An empty shared table (a previous test's rows removed)."""
    queue = PgDeployQueue(queue_url)
    empty(queue)
    yield queue
    queue.close()


def empty(queue: PgDeployQueue) -> None:
    with queue._cursor() as cur:
        cur.execute(f"TRUNCATE {TABLE}")


def drain_in_threads(url: str, threads: int, deployments: list[str] | None = None) -> list[str]:
    """`threads` QueueWorkers, each with its own PgDeployQueue (as separate processes would have), started
    together so their claims contend; the ids each predicted."""
    barrier = threading.Barrier(threads)

    def run() -> list[str]:
        queue = PgDeployQueue(url)
        predicted: list[str] = []

        def resolve(job):
            def predict():
                predicted.append(job.prediction_id)
                return float(job.request["i"])

            return {"version_id": "v1", "key": "m"}, predict

        ready = (lambda: deployments) if deployments is not None else (lambda: None)
        worker = QueueWorker(queue, resolve, ready, log)
        barrier.wait(timeout=60)
        try:
            while worker.process_one():
                pass
        finally:
            queue.close()
        return predicted

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(run) for _ in range(threads)]
        return [prediction_id for future in futures for prediction_id in future.result()]


def assert_each_done_once(queue, ids: dict[str, int], predicted: list[str]) -> None:
    twice = {prediction_id: n for prediction_id, n in Counter(predicted).items() if n > 1}
    assert not twice, f"{len(twice)} request(s) predicted more than once, e.g. {next(iter(twice.items()))}"
    assert set(predicted) == set(ids)
    for prediction_id, i in ids.items():
        row = queue.get(prediction_id)
        assert (row.status, row.result, row.attempts) == (COMPLETE, float(i), 1)


def test_many_claimers_predict_each_request_once(queue, queue_url):
    ids = {queue.enqueue("d", {"i": i}): i for i in range(300)}
    predicted = drain_in_threads(queue_url, 8)
    assert_each_done_once(queue, ids, predicted)
    assert queue.counts() == {COMPLETE: 300}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=40),
    workers=st.integers(min_value=2, max_value=6),
    served=st.sets(st.sampled_from(["a", "b", "c"]), min_size=1),
)
def test_any_mix_of_rows_and_claimers_predicts_each_served_request_once(queue, queue_url, rows, workers, served):
    empty(queue)
    ids = {queue.enqueue(deployment, {"i": i}): i for i, deployment in enumerate(rows)}
    predicted = drain_in_threads(queue_url, workers, sorted(served))
    mine = {prediction_id: i for prediction_id, i in ids.items() if rows[i] in served}
    assert_each_done_once(queue, mine, predicted)
    for prediction_id, i in ids.items():
        if rows[i] not in served:  # no worker has its model: it waits untouched
            row = queue.get(prediction_id)
            assert (row.status, row.attempts) == (PENDING, 0)


def test_rows_round_trip_and_outcomes_are_final(queue):
    request = {"room_type": "Entire home/apt", "mois": 7, "price": 0.1, "nested": {"a": [1, None]}}
    prediction_id = queue.enqueue("d", request)
    assert queue.get("no-such-id") is None
    job = queue.claim("w1", ["other"])
    assert job is None and queue.claim("w1", []) is None  # only deployments the worker serves
    job = queue.claim("w1", ["d"])
    assert (job.prediction_id, job.request, job.attempts) == (prediction_id, request, 1)
    assert queue.claim("w2") is None  # claimed, lease running
    assert queue.complete(job, "w2", 1.0, None) is False  # not the claimer
    model = {"version_id": "v7", "key": "m.skops"}
    assert queue.complete(job, "w1", 42.5, model) is True
    assert queue.fail(job, "w1", "late") is False  # an outcome is written once
    row = queue.get(prediction_id)
    assert (row.status, row.result, row.error, row.model, row.request) == (COMPLETE, 42.5, None, model, request)
    assert row.created_at <= row.completed_at <= time.time() + 5
    assert queue.counts() == {COMPLETE: 1}


def test_rows_of_a_claimer_whose_connection_died_are_released_at_once(queue, queue_url):
    prediction_id = queue.enqueue("d", {"i": 1})
    dead = PgDeployQueue(queue_url, lease_seconds=3600)
    job = dead.claim("otherhost:123:abc")  # a host recover() cannot inspect: only the connection tells
    backend = dead._connection().get_backend_pid()
    assert queue.recover() == 0  # its connection is alive: the lease holds
    dead.close()  # what the server sees when the process is SIGKILLed: the connection closes

    def backend_gone():
        with queue._cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (backend,))
            return cur.fetchone()[0] == 0

    wait_for(backend_gone, "the server to end the closed connection's backend", timeout=30)
    assert queue.recover() == 1
    again = queue.claim("w2")
    assert (again.prediction_id, again.attempts) == (prediction_id, 2)
    assert queue.complete(job, "otherhost:123:abc", 1.0, None) is False  # the dead claim's late outcome
    assert queue.complete(again, "w2", 2.0, None) is True
    assert (queue.get(prediction_id).status, queue.get(prediction_id).result) == (COMPLETE, 2.0)


def test_an_expired_lease_is_claimed_again_and_the_late_outcome_refused(queue_url, queue):
    short = PgDeployQueue(queue_url, lease_seconds=0.3)
    try:
        prediction_id = short.enqueue("d", {"i": 1})
        slow = short.claim("w1")
        assert short.claim("w2") is None
        time.sleep(0.4)
        assert short.recover() == 0  # w1's connection lives: only the lease frees the row
        taken = short.claim("w2")
        assert (taken.prediction_id, taken.attempts) == (prediction_id, 2)
        assert short.complete(slow, "w1", 1.0, None) is False
        assert short.complete(taken, "w2", 2.0, None) is True
    finally:
        short.close()


def test_a_request_that_keeps_killing_its_worker_ends_as_error(queue_url, queue):
    short = PgDeployQueue(queue_url, lease_seconds=0.01)
    try:
        prediction_id = short.enqueue("d", {"i": 1})
        for _ in range(MAX_ATTEMPTS):
            assert short.claim("dying") is not None
            time.sleep(0.02)
        worker = QueueWorker(short, lambda job: pytest.fail("must not predict again"), lambda: None, log)
        assert worker.process_one() is True
        row = short.get(prediction_id)
        assert (row.status, row.attempts) == (ERROR, MAX_ATTEMPTS + 1)
        assert f"gave up after {MAX_ATTEMPTS} attempts" in row.error
    finally:
        short.close()


def test_a_long_poll_is_answered_when_another_process_writes_the_outcome(queue_url, queue):
    waits = CompletionWaits(queue, recheck_seconds=30.0)  # only the notification can end the wait early
    waits.start()
    other = PgDeployQueue(queue_url)
    try:
        prediction_id = queue.enqueue("d", {"i": 1})
        job = other.claim("consumer")

        async def poll():
            task = asyncio.ensure_future(waits.wait_finished(prediction_id, 20.0))
            await asyncio.sleep(0.3)  # the waiter is registered and the row still PENDING
            assert not task.done()
            started = time.monotonic()
            await asyncio.to_thread(other.complete, job, "consumer", 3.0, None)
            row = await task
            return row, time.monotonic() - started

        row, waited = asyncio.run(poll())
        assert (row.status, row.result) == (COMPLETE, 3.0)
        assert waited < 5.0  # woken by NOTIFY, not by the 30 s re-read
        assert not waits._waiters
    finally:
        waits.stop()
        other.close()


def test_the_setting_selects_the_backend(tmp_path, queue_url):
    sqlite = open_deploy_queue(PlatformSettings.from_env({"MLOPS_HOME": str(tmp_path)}))
    assert isinstance(sqlite, DeployQueue) and sqlite.path == tmp_path / "serving" / "deploy_queue.db"
    shared = open_deploy_queue(
        PlatformSettings.from_env({"MLOPS_HOME": str(tmp_path), "MLOPS_DEPLOY_QUEUE_URL": queue_url})
    )
    assert isinstance(shared, PgDeployQueue)
    shared.close()
    with pytest.raises(ValueError, match="MLOPS_DEPLOY_QUEUE_URL must be empty .* got 'mysql'"):
        PlatformSettings.from_env({"MLOPS_DEPLOY_QUEUE_URL": "mysql://u:secret@h/db"})


def test_the_consumer_refuses_bad_arguments_naming_them(capsys):
    from serving.deploy_consumer import parse_args

    assert parse_args([]).workers == 1
    for argv, named in ((["--workers", "0"], "--workers"), (["--recover-seconds", "0"], "--recover-seconds")):
        with pytest.raises(SystemExit) as exited:
            parse_args(argv)
        assert exited.value.code == 2 and named in capsys.readouterr().err
