"""The deploy queue's promise as the serving processes see it: however many workers, in however many threads and
processes, drain one queue file, every request is predicted exactly once and ends COMPLETE.

Workers run through `concurrent.futures`, whose results re-raise whatever a worker raised, so a failure inside a
worker fails the test instead of becoming a warning.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.deploy_queue import COMPLETE, PENDING, DeployQueue, QueueWorker

log = logging.getLogger("test")


def drain(path: str, deployments: list[str] | None) -> list[str]:
    """One serving worker: predict until the queue has nothing left for it; the ids it predicted, in order."""
    predicted: list[str] = []

    def resolve(job):
        def predict():
            predicted.append(job.prediction_id)
            return float(job.request["i"])

        return {"version_id": "v1"}, predict

    ready = (lambda: deployments) if deployments is not None else (lambda: None)
    worker = QueueWorker(DeployQueue(path), resolve, ready, log)
    while worker.process_one():
        pass
    return predicted


def drain_in_threads(path: str, threads: int, deployments: list[str] | None = None) -> list[str]:
    """`threads` workers of one process, started together so their claims contend."""
    barrier = threading.Barrier(threads)

    def run() -> list[str]:
        barrier.wait(timeout=60)
        return drain(path, deployments)

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(run) for _ in range(threads)]
        return [prediction_id for future in futures for prediction_id in future.result()]


def assert_each_done_once(queue: DeployQueue, ids: dict[str, int], predicted: list[str]) -> None:
    twice = {prediction_id: n for prediction_id, n in Counter(predicted).items() if n > 1}
    assert not twice, f"{len(twice)} request(s) predicted more than once, e.g. {next(iter(twice.items()))}"
    assert set(predicted) == set(ids)
    for prediction_id, i in ids.items():
        row = queue.get(prediction_id)
        assert (row.status, row.result, row.attempts) == (COMPLETE, float(i), 1)


def test_workers_in_many_processes_and_threads_predict_each_request_once(tmp_path):
    path = str(tmp_path / "queue.db")
    queue = DeployQueue(path)
    ids = {queue.enqueue("d", {"i": i}): i for i in range(400)}
    # Spawned, not forked: a child of a threaded pytest must not inherit held locks.
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as processes:
        futures = [processes.submit(drain_in_threads, path, 3) for _ in range(3)]
        predicted = [prediction_id for future in futures for prediction_id in future.result()]
    assert_each_done_once(queue, ids, predicted)
    assert queue.counts() == {COMPLETE: 400}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=60),
    workers=st.integers(min_value=2, max_value=6),
    served=st.sets(st.sampled_from(["a", "b", "c"]), min_size=1),
)
def test_any_mix_of_rows_and_workers_predicts_each_served_request_once(tmp_path_factory, rows, workers, served):
    path = str(tmp_path_factory.mktemp("queue") / "queue.db")
    queue = DeployQueue(path)
    ids = {queue.enqueue(deployment, {"i": i}): i for i, deployment in enumerate(rows)}
    predicted = drain_in_threads(path, workers, sorted(served))
    mine = {prediction_id: i for prediction_id, i in ids.items() if rows[i] in served}
    assert_each_done_once(queue, mine, predicted)
    for prediction_id, i in ids.items():
        if rows[i] not in served:  # no worker has its model: it waits untouched
            row = queue.get(prediction_id)
            assert (row.status, row.attempts) == (PENDING, 0)
