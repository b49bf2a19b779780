"""Images dropped into scones/incoming/ under the real daemon and run launcher (`dev.py up`): batched into few runs,
every object version captured exactly once, a bad image failing its run without losing the rest, and no run
requested while another one waits to start: what lands meanwhile is taken by that run."""

from __future__ import annotations

import hashlib
import itertools

import dagster as dg

from mlops_assets.scones.constants import INCOMING_PREFIX, THRESHOLD_FAILURE
from mlops_assets.scones.latecomers import WAITING_TO_START
from mlops_assets.scones.workflow import INVALID_IMAGE, PASSED
from resources import build_object_store
from resources.settings import PlatformSettings
from tests.live import capture_rows, captured_keys, ensure_scones_champion, scones_runs_in_flight, wait_until

BURST = 10


def run_start(instance, run_id: str) -> float:
    """When the run worker started executing the run (its RUN_START event)."""
    return next(record.timestamp for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START))


def assert_one_run_waits_at_a_time(instance, run_ids: set[str]) -> None:
    """Each inference run was requested only after the one before it had started executing."""
    records = sorted(
        (instance.get_run_record_by_id(run_id) for run_id in run_ids), key=lambda record: record.create_timestamp
    )
    for before, after in itertools.pairwise(records):
        started = run_start(instance, before.dagster_run.run_id)
        assert after.create_timestamp.timestamp() >= started, (
            f"run {after.dagster_run.run_id} was requested while {before.dagster_run.run_id} waited to start"
        )


def run_holding(instance, key: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(dg.RunsFilter(job_name="scones_inference"))
    return next(
        (
            run
            for run in runs
            if key in {landing["s3_key"] for landing in run.run_config["ops"]["serialize_images"]["config"]["landings"]}
        ),
        None,
    )


def test_burst_is_captured_exactly_once_in_batched_runs(live, data_dir):
    ensure_scones_champion(live)
    instance, settings = live.instance(), PlatformSettings.from_env(live.env)
    store = build_object_store(settings)
    pngs = sorted((data_dir / "scones" / "test").glob("*.png"))[: BURST - 1]
    keys = [f"{INCOMING_PREFIX}live-burst-{i:02d}.png" for i in range(BURST)]
    payloads = [path.read_bytes() for path in pngs] + [b"\x89PNG\r\n\x1a\n not an image"]
    for key, data in zip(keys, payloads, strict=False):
        store.put_bytes(key, data, "image/png")
    etags = {
        key: hashlib.md5(data).hexdigest() for key, data in zip(keys, payloads, strict=False)
    }  # the folder store's ETag
    # The same bytes again under the same key: the same object version, not a new landing.
    store.put_bytes(keys[0], pngs[0].read_bytes(), "image/png")

    wait_until(lambda: set(keys) <= captured_keys(instance), 600, f"{BURST} images captured", interval=1)
    wait_until(lambda: not scones_runs_in_flight(instance), 300, "inference runs finished")

    rows = capture_rows(settings.duckdb_path, f"{INCOMING_PREFIX}live-burst-%")
    assert sorted((key, etag) for key, etag, *_ in rows) == sorted(etags.items())  # each version once
    verdicts = {key: verdict for key, _, _, verdict, _ in rows}
    assert verdicts[keys[-1]] == INVALID_IMAGE
    assert all(verdicts[key] in (PASSED, THRESHOLD_FAILURE) for key in keys[:-1])

    run_ids = {run_id for *_, run_id in rows}
    assert len(run_ids) <= 2, f"{BURST} images dropped at once took {len(run_ids)} runs"
    assert_one_run_waits_at_a_time(instance, run_ids)
    failing_run = next(run_id for key, _, _, _, run_id in rows if key == keys[-1])
    run = instance.get_run_by_id(failing_run)
    assert run.status == dg.DagsterRunStatus.FAILURE and run.tags.get("dagster/will_retry") != "true"
    failure = next(
        record.dagster_event for record in instance.all_logs(failing_run, of_type=dg.DagsterEventType.STEP_FAILURE)
    )
    assert f"{INVALID_IMAGE}: {keys[-1]}" in failure.step_failure_data.user_failure_data.description


def test_what_lands_while_a_run_waits_to_start_is_taken_by_that_run(live, data_dir):
    ensure_scones_champion(live)
    instance, settings = live.instance(), PlatformSettings.from_env(live.env)
    store = build_object_store(settings)
    pngs = sorted((data_dir / "scones" / "test").glob("*.png"))[-3:]
    keys = [f"{INCOMING_PREFIX}live-wait-{i}.png" for i in range(3)]
    store.put_bytes(keys[0], pngs[0].read_bytes(), "image/png")
    first = wait_until(lambda: run_holding(instance, keys[0]), 300, "a run requested for the first image", interval=0.2)
    for key, path in zip(keys[1:], pngs[1:], strict=False):
        store.put_bytes(key, path.read_bytes(), "image/png")
    first_waited = instance.get_run_by_id(first.run_id).status in WAITING_TO_START

    wait_until(lambda: set(keys) <= captured_keys(instance), 600, "3 images captured", interval=1)
    wait_until(lambda: not scones_runs_in_flight(instance), 300, "inference runs finished")
    rows = capture_rows(settings.duckdb_path, f"{INCOMING_PREFIX}live-wait-%")
    assert sorted(key for key, *_ in rows) == keys  # each once
    run_of = {key: run_id for key, *_, run_id in rows}
    assert run_of[keys[0]] == first.run_id
    assert_one_run_waits_at_a_time(instance, set(run_of.values()))
    if first_waited:  # both landed before the first run started executing: that run took them, no second run
        assert run_of[keys[1]] == run_of[keys[2]] == first.run_id
        # and no run was requested for what it took
        assert run_holding(instance, keys[1]) is None and run_holding(instance, keys[2]) is None
