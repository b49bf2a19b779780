"""Pistachio monitoring on the package's bootstrapped deployment: each weekly file scored by the champion that
served before it, the chart over the weeks, and drift of logged `/classify` inputs."""

from datetime import UTC, datetime

import dagster as dg
import pytest
from sklearn.metrics import accuracy_score

from mlops_assets.common.monitoring import DRIFT_CHECK, PERFORMANCE_CHECK
from mlops_assets.pistachio.constants import FEATURES, MODEL_NAME, TRAINING_DATAFILE_TAG, VALIDATION_AUC_TAG
from mlops_assets.pistachio.model_file import load_pipeline
from tests.monitoring.logrows import log_row, write_log

WEEKS = ["pistachio_20230710", "pistachio_20230717", "pistachio_20230724"]


def materialize(deployment, name, partition=None):
    result = dg.materialize(
        list(deployment.defs.assets),
        selection=[dg.AssetKey(["pistachio", name])],
        partition_key=partition,
        instance=deployment.instance,
        resources=deployment.defs.resources,
    )
    assert result.success
    return result


def table(deployment, sql):
    with deployment.resource("warehouse").get_connection() as connection:
        return connection.execute(sql).df()


def test_each_week_is_scored_by_the_champion_that_served_before_it(bootstrapped):
    for week in WEEKS:
        materialize(bootstrapped, "realized_performance", week)
    realized = table(bootstrapped, "select * from pistachio.realized_performance order by snapshot")
    assert realized["snapshot"].tolist() == WEEKS[1:]  # nothing served before the first file
    registry = bootstrapped.resource("mlflow")
    versions = {str(v.version): v for v in registry.client().search_model_versions(f"name='{MODEL_NAME}'")}
    for row in realized.itertuples():
        scored = versions[row.model_version]
        assert scored.tags[TRAINING_DATAFILE_TAG] < row.snapshot  # trained before the file arrived
        raw = table(bootstrapped, f"select * from pistachio.raw_snapshot where snapshot = '{row.snapshot}'")
        model = load_pipeline(registry, f"models:/{MODEL_NAME}/{row.model_version}")
        truth = raw["class"].astype(int)
        assert row.accuracy == pytest.approx(
            accuracy_score(truth, model.predict(raw[list(FEATURES)].astype(float).to_dict(orient="records")))
        )
        assert row.rows == len(raw)
    assert realized.iloc[0]["model_version"] == next(
        str(v.version) for v in versions.values() if v.tags[TRAINING_DATAFILE_TAG] == WEEKS[0]
    )

    chart = materialize(bootstrapped, "realized_performance_chart")
    metadata = chart.asset_materializations_for_node("pistachio__realized_performance_chart")[0].metadata
    assert metadata["auc"].value == pytest.approx(realized.iloc[-1]["auc"])
    assert metadata["periods"].value == 2 and metadata["preview"].value.startswith("![")
    [check] = [c for c in chart.get_asset_check_evaluations() if c.check_name == PERFORMANCE_CHECK]
    expected = float(versions[realized.iloc[-1]["model_version"]].tags[VALIDATION_AUC_TAG])
    assert check.metadata["expected"].value == pytest.approx(expected)
    assert check.passed == (realized.iloc[-1]["auc"] >= expected - 0.1)


def test_logged_kernels_drift_when_one_feature_is_scaled(bootstrapped):
    week = WEEKS[-1]
    rows = table(bootstrapped, f"select * from pistachio.raw_snapshot where snapshot = '{week}' limit 60")
    now = datetime.now(UTC)
    logged = [
        log_row(
            "pistachio",
            "/classify",
            {**{f: float(r[f]) for f in FEATURES}, "area": float(r["area"]) * 3},
            {"Type": "Kirmizi_Pistachio"},
            logged_at=now,
        )
        for _, r in rows.iterrows()
    ]
    write_log(bootstrapped.resource("object_store"), "pistachio", logged)
    result = materialize(bootstrapped, "input_drift")
    metadata = result.asset_materializations_for_node("pistachio__input_drift")[0].metadata
    assert "area" in metadata["drifted"].value
    # Over 1,000 reference rows Evidently measures a normed Wasserstein distance (drift from 0.1 on).
    assert "Wasserstein" in metadata["drift_methods"].value["area"]
    assert metadata["drift_score/area"].value > 1.0
    assert metadata["drift_share"].value == pytest.approx(len(metadata["drifted"].value) / len(FEATURES))
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == DRIFT_CHECK]
    assert check.passed == (metadata["drift_share"].value < 0.5)
