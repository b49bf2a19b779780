"""Deploy's queued predictions in the inference log, under their queue ids, and their receipt: the model file
and the Dagster run that checked and released it."""

from __future__ import annotations

import json

import dagster as dg
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mlops_assets.deploy.assets import PINNED_MODEL_CODE_VERSION, deployment, pinned_model
from mlops_assets.deploy.models import read_pin
from resources import build_object_store
from resources.mlflow_registry import MlflowRegistry
from resources.model_bucket import build_model_bucket
from serving import deploy, predictions
from serving.context import ServingContext
from serving.inference_log import InferenceLog
from tests.deploy.helpers import DEPLOYMENTS, upload_and_deploy
from tests.support import wait_for

NAME = "paris_airbnb_price"


def test_a_queued_prediction_is_logged_under_its_id_with_its_release_receipt(
    settings, paris_skops, tmp_path, monkeypatch
):
    store, bucket = build_object_store(settings), build_model_bucket(settings)
    upload_and_deploy(store, bucket, NAME, paris_skops)
    store.delete(f"serving/deploy/{NAME}/CURRENT.json")  # released by a real Dagster run this time
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        instance.add_dynamic_partitions("deployments", [NAME])
        registry = MlflowRegistry(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path))
        release = dg.materialize(
            [pinned_model, deployment],
            partition_key=NAME,
            instance=instance,
            resources={"object_store": store, "model_bucket": bucket, "mlflow": registry},
        )
        monkeypatch.setenv("DAGSTER_HOME", instance.root_directory)
        ctx = ServingContext.from_settings(settings, poll_seconds=0.1)
        app = FastAPI()
        app.include_router(deploy.build_router(ctx))
        app.include_router(predictions.build_router(ctx, ["deploy"]))
        ctx.poller.start()
        try:
            with TestClient(app) as client:  # runs the deploy router's lifespan: the queue worker
                wait_for(lambda: NAME in ctx.poller.watchers[0].current, "the released deployment", timeout=60)
                accepted = client.post(f"/api/{NAME}/predict", json=DEPLOYMENTS[NAME].raw_example).json()
                done = client.get(f"/api/predict/{accepted['prediction_id']}", params={"wait": 10}).json()
                assert done["status"] == "COMPLETE"
                response = client.get(f"/predictions/{accepted['prediction_id']}")
                ctx.inference_log.flush()
                # Another process finds it too: queue ids carry no time, the queue's locator says which hour.
                other = InferenceLog(store)
                other.locators = ctx.inference_log.locators
                found = other.find(accepted["prediction_id"], ["deploy"])
        finally:
            ctx.poller.stop()
    assert response.status_code == 200, response.text
    logged, receipt = response.json()["prediction"], response.json()["receipt"]
    pin = read_pin(store, NAME)
    assert logged["route"] == f"/api/{NAME}/predict" and logged["model_version"] == pin.version_id
    assert set(logged["inputs"]) == set(DEPLOYMENTS[NAME].raw_example)
    assert logged["output"]["value"] == done["body"] and json.loads(found["output"]) == logged["output"]
    assert receipt["model"]["file"]["sha256"] == pin.sha256 and receipt["mlflow_run"] is None
    assert receipt["dagster_run"]["run_id"] == release.run_id
    made = receipt["model_materialization"]
    assert (made["asset_key"], made["partition"]) == ("deploy/pinned_model", NAME)
    assert made["code_version"] == receipt["code_version"] == PINNED_MODEL_CODE_VERSION
    assert any("trained outside the platform" in reason for reason in receipt["missing"])
