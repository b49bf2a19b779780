"""The Titanic group materialized end to end, the promotion gate, declarative retraining and the schedule."""

import datetime as dt
import json

import dagster as dg
import duckdb
import pandas as pd
from sklearn.dummy import DummyClassifier

from mlops_assets.common.training import SKIPPED
from mlops_assets.titanic.assets import holdout_accuracy, promotion_gate
from mlops_assets.titanic.automation import daily_schedule
from mlops_assets.titanic.constants import FEATURES, IMAGE_KEYS, LABEL, MODEL_NAME, RECENT_PREDICTIONS_KEY
from mlops_assets.titanic.features import synthetic_passenger
from resources import build_object_store, build_registry
from resources.mlflow_registry import CHALLENGER, CHAMPION, model_uri
from tests.titanic.conftest import BOOTSTRAP_DAYS


def key(name):
    return dg.AssetKey(["titanic", name])


def latest_metadata(platform, name):
    event = platform.instance.get_latest_materialization_event(key(name))
    assert event is not None, f"titanic/{name} was not materialized"
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}, event


def read_table(platform, name) -> pd.DataFrame:
    with duckdb.connect(str(platform.settings.duckdb_path), read_only=True) as con:
        return con.execute(f"select * from titanic.{name}").df()


def test_feature_group_holds_real_and_synthetic_passengers(titanic_platform):
    group = read_table(titanic_platform, "feature_group")
    assert len(group) == 891 + len(BOOTSTRAP_DAYS)
    assert group["passenger_id"].is_unique
    synthetic = group[group["source"] == "synthetic"].set_index("passenger_id")
    for day in BOOTSTRAP_DAYS:
        expected = synthetic_passenger(dt.date.fromisoformat(day))
        assert synthetic.loc[expected["passenger_id"], LABEL] == expected[LABEL]
    checks = titanic_platform.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(key("feature_group"), "feature_group_valid")]
    )
    assert next(iter(checks.values())).status.value == "SUCCEEDED"


def test_model_is_registered_champion_with_its_lineage_and_honest_accuracy(titanic_platform):
    meta, event = latest_metadata(titanic_platform, "survival_model")
    registry = build_registry(titanic_platform.settings)
    champion = registry.version_by_alias(MODEL_NAME, CHAMPION)
    assert champion is not None and str(champion.version) == meta["model_version"]
    assert champion.tags["dagster_run_id"] == event.run_id
    assert isinstance(meta["accuracy"], float)
    model = registry.load_sklearn(f"models:/{MODEL_NAME}/{champion.version}")
    assert list(model.feature_names_in_) == FEATURES  # no passenger_id leak
    split = read_table(titanic_platform, "training_split")
    assert abs(holdout_accuracy(model, split) - meta["accuracy"]) < 1e-12
    assert meta["kaggle_holdout_accuracy"] >= 0.78
    experiment = registry.client().get_run(champion.run_id).info.experiment_id
    assert meta["mlflow_run_url"] == f"http://127.0.0.1:5000/#/experiments/{experiment}/runs/{champion.run_id}"
    assert meta["mlflow_version_url"] == f"http://127.0.0.1:5000/#/models/{MODEL_NAME}/versions/{champion.version}"


def test_daily_predictions_history_and_pictures(titanic_platform):
    history = read_table(titanic_platform, "prediction_history").sort_values("event_date")
    assert history["event_date"].dt.strftime("%Y-%m-%d").tolist() == BOOTSTRAP_DAYS
    champion = build_registry(titanic_platform.settings).version_by_alias(MODEL_NAME, CHAMPION)
    assert set(history["model_version"]) == {str(champion.version)}
    for row in history.itertuples():
        assert row.label == synthetic_passenger(row.event_date.date())[LABEL]

    store = build_object_store(titanic_platform.settings)
    for name in ("latest_passenger", "actual_fate", "df_recent"):
        assert store.get_bytes(IMAGE_KEYS[name]).startswith(b"\x89PNG"), name
        meta, _ = latest_metadata(titanic_platform, f"{ {'df_recent': 'recent_predictions'}.get(name, name) }_image")
        assert meta["preview"].startswith("![")
    recent = json.loads(store.get_bytes(RECENT_PREDICTIONS_KEY))
    assert [r["date"] for r in recent] == BOOTSTRAP_DAYS[::-1]
    both_fates = history["prediction"].nunique() == 2
    assert store.exists(IMAGE_KEYS["confusion_matrix"]) == both_fates


def test_unchanged_inputs_skip_training_and_ties_go_to_the_newer_model(titanic_platform):
    registry = build_registry(titanic_platform.settings)
    before = registry.version_by_alias(MODEL_NAME, CHAMPION)
    registered = len(registry.client().search_model_versions(f"name = '{MODEL_NAME}'"))
    result = titanic_platform.job("titanic_training").execute_in_process(instance=titanic_platform.instance)
    gate = result.get_asset_check_evaluations()[0]
    assert gate.passed  # the champion's own version, re-emitted: the gate keeps it
    meta, _ = latest_metadata(titanic_platform, "survival_model")
    assert meta["training"] == SKIPPED and meta["model_version"] == str(before.version)
    assert len(registry.client().search_model_versions(f"name = '{MODEL_NAME}'")) == registered

    # Same model, same holdout: a tie, and ties go to the newer version.
    split = read_table(titanic_platform, "training_split")
    # A copy of the champion, from the same runs: it carries their lineage, which serving reports.
    tie = registry.register(
        MODEL_NAME,
        model_uri(MODEL_NAME, before.version),
        before.run_id,
        tags={"dagster_run_id": before.tags["dagster_run_id"]},
    )
    champion_model = registry.load_version(MODEL_NAME, before.version)
    check = promotion_gate(
        dg.build_asset_context(), registry, split, str(tie.version), holdout_accuracy(champion_model, split)
    )
    assert check.passed
    retrained = registry.version_by_alias(MODEL_NAME, CHAMPION)
    assert retrained.version == tie.version

    train = split[split["split"] == "train"]
    dummy = DummyClassifier(strategy="constant", constant=1).fit(train[FEATURES], train[LABEL])
    with registry.start_run("titanic") as run:
        info = registry.log_sklearn_model(dummy)
    worse = registry.register(MODEL_NAME, info.model_uri, run.info.run_id)
    check = promotion_gate(
        dg.build_asset_context(), registry, split, str(worse.version), holdout_accuracy(dummy, split)
    )
    assert not check.passed and check.metadata["decision"].value == CHALLENGER
    assert registry.version_by_alias(MODEL_NAME, CHAMPION).version == retrained.version
    assert registry.version_by_alias(MODEL_NAME, CHALLENGER).version == worse.version
    assert "worse" in registry.client().get_model_version(MODEL_NAME, worse.version).tags["promotion.reason"]


def requested(result) -> set[str]:
    """Names of the assets an automation evaluation requested."""
    return {r.key.path[-1] for r in result.results if result.get_num_requested(r.key)}


def test_retraining_is_requested_once_per_feature_group_change(titanic_platform):
    instance, definitions = titanic_platform.instance, titanic_platform.definitions
    titanic = dg.AssetSelection.groups("titanic")
    first = dg.evaluate_automation_conditions(defs=definitions, instance=instance, asset_selection=titanic)
    assert first.total_requested == 0  # the bootstrap trained on the latest features

    titanic_platform.job("titanic_daily").execute_in_process(
        instance=instance, partition_key=BOOTSTRAP_DAYS[-1], asset_selection=[key("feature_group")]
    )
    second = dg.evaluate_automation_conditions(
        defs=definitions, instance=instance, asset_selection=titanic, cursor=first.cursor
    )
    # One run: split, then model and gate; the realized-performance monitor is eager on new labelled data too.
    assert requested(second) == {"training_split", "survival_model", "realized_performance"}

    again = dg.evaluate_automation_conditions(
        defs=definitions, instance=instance, asset_selection=titanic, cursor=second.cursor
    )
    assert again.total_requested == 0  # requested once per change, not on every tick


def test_daily_schedule_requests_yesterdays_partition(titanic_platform):
    # Resolved by the location: the job's daily partitions come from the assets it selects.
    schedule = titanic_platform.definitions.resolve_schedule_def(daily_schedule.name)
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 3, 11, 6, 0, tzinfo=dt.UTC))
    requests = list(schedule.evaluate_tick(context).run_requests)
    assert [r.partition_key for r in requests] == ["2026-03-10"]
