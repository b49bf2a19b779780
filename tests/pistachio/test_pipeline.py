"""The Dagster side end to end: bootstrap, promotion over three weeks, the model file, the sensor, bad files."""

from __future__ import annotations

import hashlib
import io
import json

import dagster as dg
import pandas as pd
import pytest

from mlops_assets.pistachio.automation import SENSOR, TRAINING_JOB
from mlops_assets.pistachio.constants import (
    MODEL_FILE_KEY,
    MODEL_MANIFEST_KEY,
    MODEL_NAME,
    TRAINING_DATAFILE_TAG,
    VALIDATION_AUC_TAG,
)
from mlops_assets.pistachio.partitions import snapshot_partitions
from mlops_assets.pistachio.snapshot_files import snapshot_object_key
from resources import CHALLENGER, CHAMPION
from tests.pistachio.conftest import SMALL_GRID

WEEKS = ["pistachio_20230710", "pistachio_20230717", "pistachio_20230724"]


def evaluate_sensor(deployment) -> dg.SensorResult:
    sensor = deployment.defs.resolve_sensor_def(SENSOR)
    with dg.build_sensor_context(instance=deployment.instance, resources=deployment.defs.resources) as context:
        return sensor(context)


def test_bootstrap_trains_every_week_and_applies_the_original_promotion_rule(bootstrapped):
    registry = bootstrapped.resource("mlflow")
    assert sorted(bootstrapped.instance.get_dynamic_partitions(snapshot_partitions.name)) == WEEKS
    versions = sorted(registry.client().search_model_versions(f"name='{MODEL_NAME}'"), key=lambda v: int(v.version))
    assert [v.tags[TRAINING_DATAFILE_TAG] for v in versions] == WEEKS

    # The rule over the three weeks, on what the gate recorded: the candidate's own validation AUC against the
    # champion of the moment scored on that candidate's validation split; ties go to the candidate.
    champion, expected = None, []
    for version in versions:
        tags = version.tags
        assert float(tags["promotion.candidate_val_auc"]) == pytest.approx(float(tags[VALIDATION_AUC_TAG]))
        if champion is None:
            alias = CHAMPION
        else:
            candidate, incumbent = float(tags["promotion.candidate_val_auc"]), float(tags["promotion.champion_val_auc"])
            alias = CHAMPION if candidate >= incumbent else CHALLENGER
        expected.append(alias)
        champion = version if alias == CHAMPION else champion
    assert [v.tags["promotion.decision"] for v in versions] == expected
    champion = registry.version_by_alias(MODEL_NAME, CHAMPION)
    assert champion.version == max(v.version for v, a in zip(versions, expected, strict=False) if a == CHAMPION)
    assert champion.tags["dagster_run_id"]

    with bootstrapped.resource("warehouse").get_connection() as conn:
        sweep = conn.execute(
            "select snapshot, count(*), sum(is_best::int) from pistachio.model_sweep "
            "group by snapshot order by snapshot"
        ).fetchall()
        raw = conn.execute("select snapshot, count(*) from pistachio.raw_snapshot group by 1 order by 1").fetchall()
        columns = [row[0] for row in conn.execute("describe pistachio.raw_snapshot").fetchall()]
    assert sweep == [(week, len(SMALL_GRID), 1) for week in WEEKS]
    assert raw == [("pistachio_20230710", 900), ("pistachio_20230717", 1300), ("pistachio_20230724", 1718)]
    assert not any(column.lower().startswith("unnamed") for column in columns)


def test_champion_is_exported_with_its_digest(bootstrapped):
    store = bootstrapped.resource("object_store")
    data = store.get_bytes(MODEL_FILE_KEY)
    manifest = json.loads(store.get_bytes(MODEL_MANIFEST_KEY))
    champion = bootstrapped.resource("mlflow").version_by_alias(MODEL_NAME, CHAMPION)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["version"] == str(champion.version)
    event = bootstrapped.instance.get_latest_materialization_event(dg.AssetKey(["pistachio", "champion_model_file"]))
    assert event.asset_materialization.metadata["sha256"].value == manifest["sha256"]


def test_sweep_runs_are_nested_under_one_parent_per_week(bootstrapped):
    client = bootstrapped.resource("mlflow").client()
    experiment = client.get_experiment_by_name(MODEL_NAME)
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    parents = [r for r in runs if r.data.tags.get("role") == "sweep"]
    assert sorted(r.data.tags["snapshot"] for r in parents) == WEEKS
    for parent in parents:
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert len(children) == len(SMALL_GRID)
        assert {r.data.tags["dagster_run_id"] for r in children} == {parent.data.tags["dagster_run_id"]}
        assert all({"val_AUC", "test_AUC", "val_AUC_proba"} <= set(r.data.metrics) for r in children)


def test_sensor_is_quiet_after_bootstrap_then_adds_a_partition_for_a_new_file(bootstrapped):
    assert evaluate_sensor(bootstrapped).run_requests == []

    store = bootstrapped.resource("object_store")
    week = store.get_bytes(snapshot_object_key("pistachio_20230724"))
    store.put_bytes(snapshot_object_key("pistachio_20230731"), week)
    store.put_bytes("pistachio/incoming/readme.txt", b"not a snapshot")
    result = evaluate_sensor(bootstrapped)
    assert [r.partition_key for r in result.run_requests] == ["pistachio_20230731"]
    assert [list(r.partition_keys) for r in result.dynamic_partitions_requests] == [["pistachio_20230731"]]
    store.delete(snapshot_object_key("pistachio_20230731"))


def test_a_redelivered_file_is_trained_again(bootstrapped):
    store = bootstrapped.resource("object_store")
    key = snapshot_object_key("pistachio_20230710")
    original = store.get_bytes(key)
    frame = pd.read_csv(io.BytesIO(original), index_col=0)
    try:
        store.put_bytes(key, frame.iloc[:-1].to_csv().encode())
        result = evaluate_sensor(bootstrapped)
        assert [r.partition_key for r in result.run_requests] == ["pistachio_20230710"]
        assert result.dynamic_partitions_requests == []
    finally:
        store.put_bytes(key, original)
    assert evaluate_sensor(bootstrapped).run_requests == []


def test_an_unexpected_column_fails_the_schema_check_and_trains_nothing(bootstrapped):
    store = bootstrapped.resource("object_store")
    bad = pd.read_csv(io.BytesIO(store.get_bytes(snapshot_object_key("pistachio_20230724")))).head(50)
    bad["operator"] = "x"
    store.put_bytes(snapshot_object_key("bad_week"), bad.to_csv(index=False).encode())
    bootstrapped.instance.add_dynamic_partitions(snapshot_partitions.name, ["bad_week"])
    registry = bootstrapped.resource("mlflow")
    champion_before = registry.version_by_alias(MODEL_NAME, CHAMPION).version
    try:
        result = bootstrapped.defs.resolve_job_def(TRAINING_JOB).execute_in_process(
            instance=bootstrapped.instance, partition_key="bad_week", raise_on_error=False
        )
    finally:
        store.delete(snapshot_object_key("bad_week"))
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    schema = [c for c in checks if c.check_name == "snapshot_schema"]
    assert len(schema) == 1 and not schema[0].passed
    assert "pistachio/incoming/bad_week.csv: unexpected column 'operator'" in schema[0].description
    materialized = {e.asset_key.path[-1] for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert materialized == {"raw_snapshot"}
    assert registry.version_by_alias(MODEL_NAME, CHAMPION).version == champion_before
