"""A run worker SIGKILLed in the middle of a step that holds the `duckdb_warehouse` pool slot (what an OOM kill
does), under the real daemon and default run launcher: the slot is freed, the retry and the next warehouse run
complete, nothing is left half-written, and the API answers all along."""

from __future__ import annotations

import io
import logging
import os
import shutil
import signal
import threading
import time
import types
import urllib.request

import dagster as dg
import duckdb
from PIL import Image

from mlops_assets.common.constants import DUCKDB_POOL
from resources import build_object_store
from resources.settings import PlatformSettings
from tests.live import failure_summary, wait_for_run, wait_until
from tests.support import REPO_ROOT

VICTIM_STEP = "scones__labelled_images"  # writes 1,200 PNGs while holding the warehouse slot: a few seconds
PARENT_TAG = "dagster/parent_run_id"


class HealthProbe(threading.Thread):
    """Asks the API's /health every half second until stopped; remembers every failure."""

    def __init__(self, base: str):
        super().__init__(daemon=True)
        self.base, self.answers, self.failures = base, 0, []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                with urllib.request.urlopen(f"{self.base}/health", timeout=10) as response:
                    assert response.status == 200
                self.answers += 1
            except Exception as exc:  # any refusal, timeout or error status is an outage
                self.failures.append(repr(exc))
            self.stopped.wait(0.5)


def slot_holders(instance: dg.DagsterInstance) -> list[tuple[str, str]]:
    info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
    return [(slot.run_id, slot.step_key) for slot in info.claimed_slots]


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    """The run worker's pid, from the ENGINE event it logs when its process starts."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        metadata = record.dagster_event.event_specific_data.metadata or {}
        if "pid" in metadata:
            return int(metadata["pid"].value)
    raise AssertionError(f"no pid logged by run {run_id}")


def retry_of(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(dg.RunsFilter(tags={PARENT_TAG: run_id}))
    return runs[0] if runs else None


def test_killed_run_worker_frees_its_slot_and_the_platform_heals(live):
    instance = live.instance()
    probe = HealthProbe(live.api)
    probe.start()
    try:
        run_id = live.launch("scones_training")
        wait_until(
            lambda: (run_id, VICTIM_STEP) in slot_holders(instance),
            900,
            f"{VICTIM_STEP} holding the {DUCKDB_POOL} slot",
            interval=0.2,
        )
        os.kill(worker_pid(instance, run_id), signal.SIGKILL)
        killed = time.monotonic()

        assert wait_for_run(instance, run_id, 120).status == dg.DagsterRunStatus.FAILURE
        # Another run that writes the warehouse, queued behind the dead run's slot.
        monitoring_id = live.launch("scones_monitoring")
        # Within a minute of the kill the dead run's slot is freed and the next run leaves the queue (the two
        # waiting runs then take turns: the pool admits one step at a time).
        wait_until(
            lambda: not any(holder == run_id for holder, _ in slot_holders(instance)),
            max(1.0, 60 - (time.monotonic() - killed)),
            "the killed run's pool slot freed",
        )
        retry = wait_until(lambda: retry_of(instance, run_id), 60, "the automatic retry created")
        wait_until(
            lambda: any(
                instance.get_run_by_id(waiting).status != dg.DagsterRunStatus.QUEUED
                for waiting in (retry.run_id, monitoring_id)
            ),
            max(1.0, 60 - (time.monotonic() - killed)),
            "a run waiting for the warehouse dequeued",
        )

        for finished in (monitoring_id, retry.run_id):
            assert wait_for_run(instance, finished).status == dg.DagsterRunStatus.SUCCESS, failure_summary(
                instance, finished
            )
    finally:
        probe.stopped.set()
        probe.join()
    assert probe.failures == [] and probe.answers > 0

    # Nothing half-written: the tables the retry rewrote are whole, every listed object is complete.
    settings = PlatformSettings.from_env(live.env)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM scones.cifar100_archive").fetchone() == (1200,)
        indexed = connection.execute("SELECT key FROM scones.labelled_images").fetchall()
    assert len(indexed) == 1200
    store = build_object_store(settings)
    listed = {info.key for info in store.list_objects("scones/")}
    assert {key for (key,) in indexed} <= listed
    for (key,) in indexed[::40]:
        assert Image.open(io.BytesIO(store.get_bytes(key))).size == (32, 32)
    for split, count in (("train", 1000), ("test", 200)):
        assert len(store.get_bytes(f"scones/{split}.lst").decode().splitlines()) == count


def test_the_project_instance_frees_the_slot_of_a_run_that_died(tmp_path, monkeypatch):
    """The same mechanism in seconds, with the project's dagster.yaml: a run holding the warehouse slot is marked
    failed without releasing it (its worker is gone); the monitoring daemon's iteration frees it."""
    from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration

    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
        run = instance.add_run(dg.DagsterRun(job_name="scones_training", status=dg.DagsterRunStatus.STARTED))
        assert storage.claim_concurrency_slot(DUCKDB_POOL, run.run_id, VICTIM_STEP).is_claimed
        instance.report_run_failed(run)
        daemon = types.SimpleNamespace(instance=instance)  # the iteration reads only the instance

        def freed() -> bool:
            list(execute_concurrency_slots_iteration(daemon, logging.getLogger(__name__)))
            return slot_holders(instance) == []

        wait_until(freed, 60, "the dead run's slot freed by the monitoring iteration")
