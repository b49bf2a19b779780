"""The async prediction API in-process: validation, queue round trip, errors, pages, model swaps."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from mlops_assets.deploy.records import save_record
from resources import build_object_store
from resources.model_bucket import build_model_bucket
from resources.settings import PlatformSettings
from serving.app import create_app
from tests.deploy.helpers import DEPLOYMENTS, broken_pipeline, demo_record, pickle_bytes, upload_and_deploy


def wait_done(client, prediction_id: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/predict/{prediction_id}").json()
        if body["status"] != "PENDING":
            return body
        time.sleep(0.01)
    raise AssertionError(f"{prediction_id} still PENDING")


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory):
    # One app for the module: each app start creates the platform's MLflow database (seconds).
    return PlatformSettings.from_env({"MLOPS_HOME": str(tmp_path_factory.mktemp("serving")), "MLOPS_OFFLINE": "1"})


@pytest.fixture(scope="module")
def deployed(module_settings, paris_skops):
    store, bucket = build_object_store(module_settings), build_model_bucket(module_settings, env={})
    upload_and_deploy(store, bucket, "paris_airbnb_price", paris_skops)
    return store, bucket


def wait_served(client, name: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        served = {d["name"]: d["served"] for d in client.get("/api/deployments").json()}
        if served.get(name):
            return served[name]
        time.sleep(0.05)
    raise AssertionError(f"{name} was never served")


@pytest.fixture(scope="module")
def client(deployed, module_settings):
    with TestClient(create_app(module_settings, poll_seconds=0.1)) as client:
        wait_served(client, "paris_airbnb_price")  # models load in the poller thread after start-up
        yield client


def test_post_enqueues_and_worker_completes_with_the_model_version(client, deployed):
    _store, bucket = deployed
    accepted = client.post("/api/paris_airbnb_price/predict", json=DEPLOYMENTS["paris_airbnb_price"].raw_example)
    assert accepted.status_code == 202 and accepted.json()["status"] == "PENDING"
    done = wait_done(client, accepted.json()["prediction_id"])
    version = bucket.list_versions(bucket.default_bucket)[0]
    assert done["status"] == "COMPLETE" and isinstance(done["body"], float) and done["body"] > 0
    assert done["model_version"] == version.version_id and done["model"]["sha256"] == version.sha256
    assert done["lineage"]["model_version"] == version.version_id
    assert done["model"]["runtime"] == "onnxruntime"  # the compiled copy published with the deployment
    assert wait_served(client, "paris_airbnb_price")["runtime"] == "onnxruntime"


def test_default_route_serves_the_default_deployment(client):
    accepted = client.post("/api/predict", json=DEPLOYMENTS["paris_airbnb_price"].raw_example)
    assert wait_done(client, accepted.json()["prediction_id"])["deployment"] == "paris_airbnb_price"


def test_invalid_body_is_a_422_naming_the_field(client):
    response = client.post(
        "/api/paris_airbnb_price/predict", json={**DEPLOYMENTS["paris_airbnb_price"].raw_example, "mois": 14}
    )
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "mois"]]


def test_unknown_prediction_and_deployment_are_404(client):
    assert client.get("/api/predict/nope").json() == {"detail": "prediction not found"}
    response = client.post("/api/nothing/predict", json={})
    assert response.status_code == 404 and "nothing" in response.json()["detail"]


def test_deployment_without_a_model_answers_503(client, deployed):
    save_record(deployed[0], demo_record("titanic_survival"))  # created, not yet released by Dagster
    deadline = time.monotonic() + 10
    while "titanic_survival" not in client.get("/api/deployments").text:
        assert time.monotonic() < deadline, "the new deployment was not listed"
        time.sleep(0.05)
    response = client.post("/api/titanic_survival/predict", json=DEPLOYMENTS["titanic_survival"].raw_example)
    assert response.status_code == 503 and "no checked model version yet" in response.json()["detail"]


def test_a_failing_model_gives_error_with_the_message(client, deployed):
    store, bucket = deployed  # runs after the 503 test: titanic_survival gets a model here
    upload_and_deploy(
        store, bucket, "titanic_survival", pickle_bytes(broken_pipeline()), key="broken.pkl", tag="broken"
    )
    deadline = time.monotonic() + 10
    while "broken" not in client.get("/api/deployments").text:
        assert time.monotonic() < deadline, "the new snapshot was not picked up"
        time.sleep(0.05)
    accepted = client.post("/api/titanic_survival/predict", json=DEPLOYMENTS["titanic_survival"].raw_example)
    done = wait_done(client, accepted.json()["prediction_id"])
    assert done["status"] == "ERROR" and done["body"] == "RuntimeError: this model always fails"
    assert done["model"]["key"] == "broken.pkl"


def test_pages_are_generated_from_the_config(client):
    index = client.get("/deploy").text
    assert "Paris Airbnb price estimator" in index and "Titanic survival estimator" in index
    home = client.get("/deploy/paris_airbnb_price").text
    assert "Trained on generated data" in home and "predicted by its compiled ONNX copy" in home
    form = client.get("/deploy/paris_airbnb_price/form").text
    assert 'name="salle_de_bains"' in form and "Buttes-Montmartre" in form and "€ per night" in form
    assert client.get("/deploy/unknown/form").status_code == 404


def test_long_poll_answers_once_the_prediction_is_done(client):
    accepted = client.post("/api/paris_airbnb_price/predict", json=DEPLOYMENTS["paris_airbnb_price"].raw_example)
    done = client.get(f"/api/predict/{accepted.json()['prediction_id']}", params={"wait": 5}).json()
    assert done["status"] == "COMPLETE"
    assert client.get("/api/predict/nope", params={"wait": 0.2}).status_code == 404
    assert client.get("/api/predict/nope", params={"wait": 60}).status_code == 422
