"""Scones' /scones/classify in the inference log (image statistics, not pixels) and its receipt end to end."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serving import predictions, scones
from serving.context import ServingContext
from tests.support import wait_for

pytestmark = pytest.mark.realdata


def test_a_classification_and_its_receipt(scones_platform, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", scones_platform.instance.root_directory)
    ctx = ServingContext.from_settings(scones_platform.settings, poll_seconds=0.1)
    app = FastAPI()
    app.include_router(scones.build_router(ctx))
    app.include_router(predictions.build_router(ctx, ["scones"]))
    ctx.poller.start()
    try:
        wait_for(lambda: ctx.poller.watchers[0].current, "the champion", timeout=120)
        client = TestClient(app)
        path = scones_platform.data / "scones" / "test" / "bike_s_000658.png"
        answer = client.post("/scones/classify", files={"file": (path.name, path.read_bytes(), "image/png")}).json()
        response = client.get(f"/predictions/{answer['prediction_id']}")
    finally:
        ctx.poller.stop()
    assert response.status_code == 200, response.text
    logged, receipt = response.json()["prediction"], response.json()["receipt"]
    assert logged["route"] == "/scones/classify" and logged["model_version"] == answer["lineage"]["model_version"]
    stats = logged["inputs"]
    assert (stats["width"], stats["height"]) == (32, 32) and 0 < stats["mean_brightness"] < 255
    assert stats["std_brightness"] > 0
    assert logged["output"]["confidence"] == answer["confidence"]
    assert receipt["mlflow_run"]["run_id"] == answer["lineage"]["mlflow_run_id"]
    assert receipt["dagster_run"]["run_id"] == answer["lineage"]["dagster_run_id"]
    made = receipt["model_materialization"]
    assert made["asset_key"] == "scones/image_classifier" and made["code_version"] and made["data_version"]
    assert [i["asset_key"] for i in receipt["training_data"]] == ["scones/labelled_images"]
