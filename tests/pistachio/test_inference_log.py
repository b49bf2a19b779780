"""Pistachio's /classify (hot path and route) in the inference log, and the receipt of one answer end to end."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from mlops_assets.pistachio.constants import MODEL_NAME
from resources import CHAMPION
from serving import hot_path, pistachio, predictions
from serving.context import ServingContext
from tests.support import wait_for


def test_classify_answers_carry_an_id_whose_receipt_reaches_the_training_partition(bootstrapped, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", bootstrapped.instance.root_directory)
    ctx = ServingContext.from_settings(bootstrapped.settings, poll_seconds=0.2)
    app = FastAPI()
    app.include_router(pistachio.build_router(ctx))
    app.include_router(predictions.build_router(ctx, ["pistachio"]))
    hot_path.install(app, ctx.hot_paths)
    ctx.poller.start()
    try:
        wait_for(lambda: ctx.poller.watchers[0].current, "the champion", timeout=60)
        client = TestClient(app)
        hot = client.post("/classify", json=pistachio.EXAMPLE).json()
        # A body the hot path hands to the route (an integer-valued float is still valid there too).
        routed = client.post(
            "/classify",
            content=b" " + __import__("json").dumps(pistachio.EXAMPLE).encode(),
            headers={"content-type": "application/json"},
        ).json()
        assert hot["prediction_id"] != routed["prediction_id"]
        response = client.get(f"/predictions/{hot['prediction_id']}")
    finally:
        ctx.poller.stop()
    assert response.status_code == 200, response.text
    logged, receipt = response.json()["prediction"], response.json()["receipt"]
    assert logged["route"] == "/classify" and logged["inputs"] == {k: float(v) for k, v in pistachio.EXAMPLE.items()}
    assert logged["output"] == {k: v for k, v in hot.items() if k != "prediction_id"}
    champion = bootstrapped.resource("mlflow").version_by_alias(MODEL_NAME, CHAMPION)
    assert receipt["model"]["version"] == str(champion.version)
    assert receipt["mlflow_run"]["run_id"] == champion.run_id and receipt["mlflow_run"]["url"]
    assert receipt["dagster_run"]["run_id"] == champion.tags["dagster_run_id"]
    made = receipt["model_materialization"]
    # The week the model was trained on: the partition of the registered model and of its sweep input.
    assert made["asset_key"] == "pistachio/registered_model" and made["partition"] and made["code_version"]
    assert [(i["asset_key"], i["partition"]) for i in receipt["training_data"]] == [
        ("pistachio/model_sweep", made["partition"])
    ]
    assert receipt["training_data"][0]["data_version"]
