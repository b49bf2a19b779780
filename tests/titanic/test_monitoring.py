"""Titanic monitoring on the package's materialized platform: drift of logged predictor answers, realized
accuracy over the daily predictions and logged answers about known passengers, and the retrain sensor."""

from datetime import UTC, datetime

import dagster as dg
import duckdb
import pytest

from mlops_assets.common.monitoring import DRIFT_CHECK, PERFORMANCE_CHECK
from resources import MonitoringSettings, build_object_store
from resources.mlflow_registry import CHAMPION
from sensors.retrain import TRIGGER
from tests.monitoring.logrows import log_row, log_set_aside, write_log

FORM = {"age_band": "50+", "port": "Cherbourg", "sex": "female", "fare_band": "150+", "pclass": 1}
ENCODED = {"pclass": 1, "sex_encoded": 1, "embarked_encoded": 1, "age_encoded": 6, "fare_encoded": 6}


def table(platform, name):
    with duckdb.connect(str(platform.settings.duckdb_path), read_only=True) as con:
        return con.execute(f"select * from titanic.{name}").df()


def materialize(platform, *names):
    return dg.materialize(
        list(platform.definitions.assets),
        selection=[dg.AssetKey(["titanic", n]) for n in names],
        instance=platform.instance,
        resources=platform.definitions.resources,
    )


@pytest.fixture(scope="module")
def monitored(titanic_platform):
    store = build_object_store(titanic_platform.settings)
    with log_set_aside(store, "titanic"):
        yield _monitored(titanic_platform, store)


def _monitored(titanic_platform, store):
    now = datetime.now(UTC)
    # Old, rich women from Cherbourg in first class: unlike the training passengers. Half of the answers carry
    # the encoded features, half only the form's words (the monitoring encodes them itself).
    rows = [
        log_row("titanic", "/titanic/predict", FORM, {"survived": True, "features": ENCODED}, logged_at=now)
        for _ in range(15)
    ]
    rows += [log_row("titanic", "/titanic/predict", FORM, {"survived": True}, logged_at=now) for _ in range(15)]
    group = table(titanic_platform, "feature_group").set_index("passenger_id")
    known = [int(group.index[group["survived"] == 0][0]), int(group.index[group["survived"] == 1][0])]
    rows += [
        log_row("titanic", "/titanic/batch", {"passenger_id": pid}, {"prediction": 1}, logged_at=now) for pid in known
    ]  # the first is wrong, the second right
    write_log(store, "titanic", rows)
    result = materialize(titanic_platform, "input_drift", "realized_performance")
    assert result.success
    return titanic_platform, result


def test_drift_of_logged_passengers_fails_the_check(monitored):
    _, result = monitored
    metadata = result.asset_materializations_for_node("titanic__input_drift")[0].metadata
    assert metadata["current_rows"].value == 30
    assert metadata["drift_share"].value == 1.0
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == DRIFT_CHECK)
    assert not check.passed


def test_realized_accuracy_counts_daily_and_logged_predictions(monitored):
    platform, result = monitored
    history = table(platform, "prediction_history").dropna(subset=["label"])
    correct = int((history["prediction"] == history["label"]).sum()) + 1  # + the right logged answer
    metadata = result.asset_materializations_for_node("titanic__realized_performance")[0].metadata
    assert metadata["logged_labelled"].value == 2
    assert metadata["cumulative_accuracy"].value == pytest.approx(correct / (len(history) + 2))
    assert metadata["preview"].value.startswith("![")
    store = build_object_store(platform.settings)
    assert store.get_bytes("monitoring/titanic/realized_performance.png").startswith(b"\x89PNG")
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == PERFORMANCE_CHECK)
    champion = platform.definitions.resources["mlflow"].version_by_alias("titanic_modal", CHAMPION)
    assert check.metadata["expected"].value == pytest.approx(float(champion.tags["accuracy"]))


def test_failed_check_requests_retraining_only_when_switched_on(monitored):
    platform, _ = monitored
    sensor = platform.definitions.get_sensor_def("titanic_retrain_on_monitoring_failure")
    off = dg.build_sensor_context(
        instance=platform.instance, resources={"monitoring": MonitoringSettings(retrain_on_failure=False)}
    )
    skipped = sensor(off)
    assert "retraining on monitoring failures is off" in skipped.skip_message
    assert "titanic/input_drift:drift_share_below_threshold" in skipped.skip_message
    assert (
        "no new failed"
        in sensor(
            dg.build_sensor_context(
                instance=platform.instance,
                cursor=off.cursor,
                resources={"monitoring": MonitoringSettings(retrain_on_failure=True)},
            )
        ).skip_message
    )
    on = dg.build_sensor_context(
        instance=platform.instance, resources={"monitoring": MonitoringSettings(retrain_on_failure=True)}
    )
    request = sensor(on)
    assert isinstance(request, dg.RunRequest), request
    assert request.tags["trigger"] == TRIGGER
    assert "titanic/input_drift:drift_share_below_threshold" in request.tags["monitoring.check"]
