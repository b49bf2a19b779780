"""Drift of logged inputs (Evidently) and the Titanic drift asset on small frames: figures, report, summary, check."""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from mlops_assets.common.drift import compute_drift
from mlops_assets.common.monitoring import read_log
from mlops_assets.titanic import monitoring as titanic_monitoring
from mlops_assets.titanic.constants import FEATURES
from resources.monitoring import MonitoringSettings
from resources.object_store import LocalObjectStore
from tests.monitoring.logrows import log_row, write_log


def passengers(n: int, shifted: bool = False, seed: int = 0) -> pd.DataFrame:
    """Encoded passengers (seeded: the same frame every run); `shifted`: all first class, female, from
    Cherbourg, old and rich."""
    rng = np.random.default_rng(seed)
    if shifted:
        return pd.DataFrame(
            {
                "pclass": [1] * n,
                "sex_encoded": [1] * n,
                "embarked_encoded": [1] * n,
                "age_encoded": [6] * n,
                "fare_encoded": [6] * n,
            }
        )
    return pd.DataFrame(
        {
            "pclass": rng.choice([1, 2, 3], n, p=[0.25, 0.2, 0.55]),
            "sex_encoded": rng.integers(0, 2, n),
            "embarked_encoded": rng.choice([0, 1, 2], n, p=[0.7, 0.2, 0.1]),
            "age_encoded": rng.integers(0, 7, n),
            "fare_encoded": rng.integers(0, 7, n),
        }
    )


def test_compute_drift_flags_shifted_features_only():
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({"a": rng.normal(0, 1, 400), "b": rng.normal(5, 2, 400)})
    current = pd.DataFrame({"a": rng.normal(3, 1, 80), "b": rng.normal(5, 2, 80)})
    drift = compute_drift(reference, current, numerical=["a", "b"])
    assert drift.drifted == {"a": True, "b": False}
    assert drift.share == 0.5
    assert drift.scores["a"] < 0.05 < drift.scores["b"]  # K-S p-values on samples this small
    assert "<html" in drift.html.lower()


@pytest.fixture
def store(tmp_path):
    return LocalObjectStore(root=str(tmp_path / "objects"))


def titanic_log(store, frame: pd.DataFrame, hours_ago: int = 1):
    when = datetime.now(UTC) - timedelta(hours=hours_ago)
    rows = [
        log_row(
            "titanic",
            "/titanic/predict",
            {"age_band": "25-30"},
            {"survived": True, "features": {k: int(v) for k, v in row.items()}},
            logged_at=when,
        )
        for row in frame.to_dict(orient="records")
    ]
    write_log(store, "titanic", rows)


def materialize_drift(store, threshold: float, train: pd.DataFrame):
    @dg.asset(key=["titanic", "training_split"])
    def training_split() -> pd.DataFrame:
        return train.assign(split="train")

    return dg.materialize(
        [training_split, titanic_monitoring.input_drift],
        resources={"object_store": store, "monitoring": MonitoringSettings(drift_share_threshold=threshold)},
    )


def test_titanic_drift_asset_warns_on_shifted_passengers_and_links_its_report(store):
    titanic_log(store, passengers(40, shifted=True))
    titanic_log(store, passengers(30, shifted=True), hours_ago=24 * 8)  # outside the week: not read
    result = materialize_drift(store, 0.5, passengers(600))
    assert result.success
    metadata = result.asset_materializations_for_node("titanic__input_drift")[0].metadata
    assert metadata["current_rows"].value == 40
    assert metadata["drift_share"].value == 1.0
    assert {f"drift_score/{name}" for name in FEATURES} <= set(metadata)
    report = metadata["report"].value
    assert report.endswith(".html") and "<html" in open(urlparse(report).path).read().lower()
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "5 of 5 features drifted" in check.description
    assert metadata["preview"].value.startswith("![drift score per feature]")
    assert store.get_bytes("monitoring/titanic/input_drift.png").startswith(b"\x89PNG")
    summary = json.loads(store.get_bytes("monitoring/titanic/input_drift.json"))
    assert summary["charts"] == {"drift per feature": "monitoring/titanic/input_drift.png"}
    assert summary["figures"]["drift_share"] == 1.0 and summary["checks"][0]["passed"] is False


def test_titanic_drift_check_passes_on_passengers_like_the_training_ones(store):
    titanic_log(store, passengers(60, seed=2))
    result = materialize_drift(store, 0.5, passengers(600, seed=1))
    metadata = result.asset_materializations_for_node("titanic__input_drift")[0].metadata
    [check] = result.get_asset_check_evaluations()
    assert metadata["drift_share"].value < 0.5 and check.passed


def test_drift_threshold_is_configurable(store):
    # Three of five features shifted, two drawn like the training passengers: share 0.6.
    titanic_log(store, passengers(60, seed=3).assign(sex_encoded=1, embarked_encoded=1, age_encoded=6))
    lenient = materialize_drift(store, 0.7, passengers(600, seed=1))
    share = lenient.asset_materializations_for_node("titanic__input_drift")[0].metadata["drift_share"].value
    assert share == pytest.approx(0.6) and lenient.get_asset_check_evaluations()[0].passed
    strict = materialize_drift(store, 0.6, passengers(600, seed=1))
    assert not strict.get_asset_check_evaluations()[0].passed


def test_too_few_logged_answers_give_no_figures_and_no_warning(store):
    titanic_log(store, passengers(3, shifted=True))
    result = materialize_drift(store, 0.5, passengers(600))
    metadata = result.asset_materializations_for_node("titanic__input_drift")[0].metadata
    assert "drift_share" not in metadata and "3 logged answers" in metadata["note"].value
    assert result.get_asset_check_evaluations()[0].passed


def test_read_log_reads_only_the_window(store):
    titanic_log(store, passengers(5), hours_ago=2)
    titanic_log(store, passengers(7), hours_ago=24 * 9)
    assert len(read_log(store, "titanic")) == 5
    assert len(read_log(store, "titanic", since=datetime.now(UTC) - timedelta(days=10))) == 12


def test_drift_asset_is_requested_once_per_hour():
    @dg.asset(key=["titanic", "training_split"])
    def training_split() -> pd.DataFrame:
        return passengers(10)

    defs = dg.Definitions(
        assets=[training_split, titanic_monitoring.input_drift],
        resources={"object_store": LocalObjectStore(root="unused"), "monitoring": MonitoringSettings()},
    )
    start = datetime(2026, 1, 1, 10, 30)
    requested = []
    with dg.instance_for_test() as instance:
        cursor = None
        for minutes in (0, 20, 40, 50, 100):  # 10:30, 10:50, 11:10, 11:20, 12:10
            result = dg.evaluate_automation_conditions(
                defs=defs, instance=instance, cursor=cursor, evaluation_time=start + timedelta(minutes=minutes)
            )
            cursor = result.cursor
            requested.append(result.total_requested)
    assert requested == [0, 0, 1, 0, 1]
