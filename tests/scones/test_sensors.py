"""The landing sensor and the batched image workflow on S3 (moto_server): drop images, evaluate, run, read captures."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mlops_assets.scones import latecomers
from mlops_assets.scones.automation import LOOKBACK, LandingCursor, inference_job, scones_incoming_images
from mlops_assets.scones.constants import CAPTURE_TABLE, INCOMING_PREFIX, THRESHOLD_FAILURE
from mlops_assets.scones.workflow import INVALID_IMAGE, PASSED
from resources import build_object_store
from resources.object_store import LocalObjectStore, ObjectInfo
from resources.settings import PlatformSettings

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def info(key: str, etag: str, seconds: float) -> ObjectInfo:
    return ObjectInfo(key=key, size=10, last_modified=T0 + timedelta(seconds=seconds), etag=etag)


def test_cursor_yields_each_object_version_once():
    cursor = LandingCursor()
    fresh, cursor = cursor.advance([info("a", "1", 0), info("b", "1", 0)])
    assert [i.key for i in fresh] == ["a", "b"]
    # Listed again (the lookback re-lists recent objects): nothing new.
    fresh, cursor = LandingCursor.parse(cursor.dump()).advance([info("a", "1", 0), info("b", "1", 0)])
    assert fresh == []
    # Landing in the same second as the last tick is still caught; a new version of "a" is a new object.
    fresh, cursor = cursor.advance([info("a", "1", 0), info("c", "1", 0), info("a", "2", 1)])
    assert [(i.key, i.etag) for i in fresh] == [("c", "1"), ("a", "2")]
    assert cursor.list_since == T0 + timedelta(seconds=1) - LOOKBACK


def test_cursor_forgets_versions_older_than_the_lookback():
    _, cursor = LandingCursor().advance([info("a", "1", 0)])
    _, cursor = cursor.advance([info("b", "1", LOOKBACK.total_seconds() + 5)])
    assert list(cursor.seen) == ["b@1"]


def test_a_tick_requests_one_run_per_batch_with_a_key_naming_its_versions(tmp_path, monkeypatch):
    from mlops_assets.scones import automation as scones

    monkeypatch.setattr(scones, "MAX_BATCH", 2)
    store = LocalObjectStore(root=str(tmp_path))
    for name in ("a", "b", "c"):
        store.put_bytes(f"{INCOMING_PREFIX}{name}.png", name.encode())
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(instance=instance, resources={"object_store": store}) as context,
    ):
        requests = scones.scones_incoming_images(context)
    assert [landed_keys(r) for r in requests] == [
        [f"{INCOMING_PREFIX}a.png", f"{INCOMING_PREFIX}b.png"],
        [f"{INCOMING_PREFIX}c.png"],
    ]
    listed = store.list_objects(INCOMING_PREFIX)
    # The key depends on the set of versions only: the same tick evaluated again asks for the same runs.
    assert scones.batch_request(listed[:2], "local").run_key == scones.batch_request(listed[1::-1], "local").run_key
    assert requests[1].run_key == listed[2].version_token


def test_no_run_is_requested_while_one_waits_to_start_and_the_next_batches_what_landed(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    store.put_bytes(f"{INCOMING_PREFIX}a.png", b"a")
    with dg.instance_for_test() as instance:
        (first,), cursor = evaluate(None, instance, store, None)
        store.put_bytes(f"{INCOMING_PREFIX}b.png", b"b")
        store.put_bytes(f"{INCOMING_PREFIX}c.png", b"c")

        def run_of_first_batch(status: dg.DagsterRunStatus) -> str:
            from dagster._core.remote_origin import (
                RegisteredCodeLocationOrigin,
                RemoteJobOrigin,
                RemoteRepositoryOrigin,
            )

            # Dagster stores a queued run only with the origin the daemon will launch it from.
            origin = RemoteJobOrigin(
                RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("mlops_platform"), "__repository__"),
                inference_job.name,
            )
            return instance.add_run(
                dg.DagsterRun(
                    job_name=inference_job.name,
                    run_config=first.run_config,
                    tags=first.tags,
                    status=status,
                    remote_job_origin=origin,
                )
            ).run_id

        for status in (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING):
            run_id = run_of_first_batch(status)
            requests, unchanged = evaluate(None, instance, store, cursor)
            assert requests == [] and unchanged == cursor, status  # the landings stay for the next tick
            instance.delete_run(run_id)
        # Started, but its first step has not taken the latecomers yet: what lands now is still that run's.
        started = run_of_first_batch(dg.DagsterRunStatus.STARTED)
        requests, unchanged = evaluate(None, instance, store, cursor)
        assert requests == [] and unchanged == cursor
        # It took b as a latecomer (c landed after that): the next tick requests c only, b is that run's.
        b = next(i for i in store.list_objects(INCOMING_PREFIX) if i.key.endswith("b.png"))
        instance.add_run_tags(started, {latecomers.TAG: latecomers.encode([latecomers.landing(b, "local")])})
        (second,), _ = evaluate(None, instance, store, cursor)
    assert landed_keys(second) == [f"{INCOMING_PREFIX}c.png"]
    assert second.run_config["ops"]["serialize_images"]["config"][latecomers.FLAG]


@pytest.fixture
def s3_platform(s3_env, scones_platform, monkeypatch):
    """S3 on moto for objects and DuckDB under a fresh home; the package's trained champion in MLflow."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", scones_platform.settings.mlflow_tracking_uri)
    from mlops_assets.definitions import defs

    settings = PlatformSettings.from_env()
    # Run retries on, as in dagster.yaml: a failed inference run must still not be retried.
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True, "max_retries": 1}}) as instance:
        yield settings, defs(), instance


def evaluate(definitions, instance, store, cursor):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"object_store": store}, definitions=definitions
    ) as context:
        result = scones_incoming_images.evaluate_tick(context)
    return result.run_requests or [], result.cursor


def captures(settings: PlatformSettings) -> list[tuple]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as connection:
        return connection.execute(
            f"SELECT s3_key, verdict, p_bicycle, p_motorcycle, model_version, detail, "
            f"s3_bucket FROM {CAPTURE_TABLE} ORDER BY s3_key"
        ).fetchall()


def step_failures(result) -> dict[str, str]:
    return {
        event.step_key: event.step_failure_data.user_failure_data.description
        for event in result.all_events
        if event.event_type_value == "STEP_FAILURE"
    }


def landed_keys(request: dg.RunRequest) -> list[str]:
    return [landing["s3_key"] for landing in request.run_config["ops"]["serialize_images"]["config"]["landings"]]


@pytest.mark.s3
def test_landed_images_are_classified_once_and_captured(s3_platform, scones_platform):
    settings, definitions, instance = s3_platform
    store = build_object_store(settings)
    images = sorted((scones_platform.data / "scones" / "test").glob("*.png"))[:3]
    for path in images:
        store.put_bytes(INCOMING_PREFIX + path.name, path.read_bytes(), "image/png")
    store.put_bytes(INCOMING_PREFIX + "broken.png", b"\x89PNG\r\n\x1a\n not really", "image/png")

    # One tick, one run for everything that landed since the last tick.
    (request,), cursor = evaluate(definitions, instance, store, None)
    assert sorted(landed_keys(request)) == sorted(
        [INCOMING_PREFIX + p.name for p in images] + [INCOMING_PREFIX + "broken.png"]
    )
    assert request.tags["scones/images"] == "4"

    # The same image dropped again (same key, same bytes) is the same object version: no second run.
    store.put_bytes(INCOMING_PREFIX + images[0].name, images[0].read_bytes(), "image/png")
    again, cursor = evaluate(definitions, instance, store, cursor)
    assert again == []

    job = definitions.resolve_job_def("scones_inference")
    result = job.execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags, raise_on_error=False
    )
    # The broken image fails the run (after the others were captured), as a verdict, not a crash: the retry
    # daemon leaves it alone.
    assert not result.success
    assert instance.get_run_by_id(result.run_id).tags.get("dagster/will_retry") == "false"
    failures = step_failures(result)
    assert list(failures) == ["filter_confidences"]
    assert f"{INVALID_IMAGE}: {INCOMING_PREFIX}broken.png" in failures["filter_confidences"]

    rows = {row[0]: row for row in captures(settings)}
    assert len(rows) == 4
    assert rows[INCOMING_PREFIX + "broken.png"][1] == INVALID_IMAGE
    for path in images:
        key, verdict, p_bicycle, p_motorcycle, version, _, bucket = rows[INCOMING_PREFIX + path.name]
        assert bucket == settings.s3_bucket and version == "1"
        assert p_bicycle + p_motorcycle == pytest.approx(1.0)
        assert verdict in (PASSED, THRESHOLD_FAILURE)
        # Every image that did not pass is named in the run's failure; the ones that passed are not.
        assert (
            f"{THRESHOLD_FAILURE}: best confidence" in failures["filter_confidences"]
            and key in failures["filter_confidences"]
        ) == (verdict == THRESHOLD_FAILURE)

    # Re-executing the batch (e.g. from the UI) captures nothing twice: each object version has one row.
    result = job.execute_in_process(run_config=request.run_config, instance=instance, raise_on_error=False)
    assert result.success and len(captures(settings)) == 4


@pytest.mark.s3
def test_threshold_is_configurable_and_fails_loudly(s3_platform, scones_platform):
    settings, definitions, instance = s3_platform
    store = build_object_store(settings)
    path = next((scones_platform.data / "scones" / "test").glob("*.png"))
    store.put_bytes(INCOMING_PREFIX + path.name, path.read_bytes(), "image/png")
    (request,), _ = evaluate(definitions, instance, store, None)
    config = {
        **request.run_config,
        "ops": {**request.run_config["ops"], "filter_confidences": {"config": {"threshold": 1.0}}},
    }
    result = definitions.resolve_job_def("scones_inference").execute_in_process(
        run_config=config, instance=instance, raise_on_error=False
    )
    assert not result.success
    assert step_failures(result)["filter_confidences"].startswith(f"{THRESHOLD_FAILURE}: best confidence")
    ((key, verdict, *_),) = captures(settings)
    assert key == INCOMING_PREFIX + path.name and verdict == THRESHOLD_FAILURE


def test_local_store_sensor_and_missing_object(scones_platform, tmp_path, monkeypatch):
    """The folder store works the same way; an object deleted before its run gives a clear failure and a row."""
    for name, value in {
        **scones_platform.env,
        "MLOPS_HOME": str(tmp_path / "home"),
        "MLFLOW_TRACKING_URI": scones_platform.settings.mlflow_tracking_uri,
    }.items():
        monkeypatch.setenv(name, value)
    from mlops_assets.definitions import defs

    settings, definitions = PlatformSettings.from_env(), defs()
    store = build_object_store(settings)
    image = Path(next((scones_platform.data / "scones" / "train").glob("*.png")))
    store.put_bytes(INCOMING_PREFIX + "gone.png", image.read_bytes())
    with dg.instance_for_test() as instance:
        (request,), _ = evaluate(definitions, instance, store, None)
        store.delete(INCOMING_PREFIX + "gone.png")
        result = definitions.resolve_job_def("scones_inference").execute_in_process(
            run_config=request.run_config, instance=instance, raise_on_error=False
        )
    assert step_failures(result)["filter_confidences"].startswith(f"{INVALID_IMAGE}: {INCOMING_PREFIX}gone.png")
    ((key, verdict, *_, bucket),) = captures(settings)
    assert (key, verdict, bucket) == (INCOMING_PREFIX + "gone.png", INVALID_IMAGE, "local")


def test_a_run_takes_what_landed_while_it_waited_to_start_exactly_once(scones_platform, tmp_path, monkeypatch):
    """The run's first step takes the versions that landed after its request and that no run holds, claims them,
    captures each once; the sensor leaves them out; a retry re-classifies its parent's latecomers, no new ones."""
    for name, value in {
        **scones_platform.env,
        "MLOPS_HOME": str(tmp_path / "home"),
        "MLFLOW_TRACKING_URI": scones_platform.settings.mlflow_tracking_uri,
    }.items():
        monkeypatch.setenv(name, value)
    from mlops_assets.definitions import defs

    settings, definitions = PlatformSettings.from_env(), defs()
    job = definitions.resolve_job_def("scones_inference")
    store = build_object_store(settings)
    pngs = sorted((scones_platform.data / "scones" / "test").glob("*.png"))
    drop = {name: INCOMING_PREFIX + f"{name}.png" for name in "abcd"}
    store.put_bytes(drop["a"], pngs[0].read_bytes())
    with dg.instance_for_test() as instance:
        (request,), cursor = evaluate(definitions, instance, store, None)
        assert landed_keys(request) == [drop["a"]]
        # While the run waits to start: b lands, and c lands and is already held by another run.
        store.put_bytes(drop["b"], pngs[1].read_bytes())
        store.put_bytes(drop["c"], pngs[2].read_bytes())
        c = next(i for i in store.list_objects(INCOMING_PREFIX) if i.key == drop["c"])
        batch = {"landings": [latecomers.landing(c, "local")]}
        instance.add_run(
            dg.DagsterRun(
                job_name=inference_job.name,
                run_config={"ops": {"serialize_images": {"config": batch}}},
                status=dg.DagsterRunStatus.SUCCESS,
            )
        )
        # raise_on_error off: an image below the threshold fails the run, a verdict captured like the others.
        result = job.execute_in_process(
            run_config=request.run_config, instance=instance, tags=request.tags, raise_on_error=False
        )
        tag = instance.get_run_by_id(result.run_id).tags[latecomers.TAG]
        assert [item["s3_key"] for item in latecomers.decode(tag, "local")] == [drop["b"]]
        assert [row[0] for row in captures(settings)] == [drop["a"], drop["b"]]

        # The next tick requests neither b (taken) nor c (held), only d, which landed after the run.
        store.put_bytes(drop["d"], pngs[3].read_bytes())
        (later,), _ = evaluate(definitions, instance, store, cursor)
        assert landed_keys(later) == [drop["d"]]

        # A retry inherits the claim: the same latecomer again (captured once already), not d.
        retry = job.execute_in_process(
            run_config=request.run_config,
            instance=instance,
            tags={**request.tags, latecomers.TAG: tag},
            raise_on_error=False,
        )
        assert instance.get_run_by_id(retry.run_id).tags[latecomers.TAG] == tag
        assert [row[0] for row in captures(settings)] == [drop["a"], drop["b"]]
