"""`POST /api/{deployment}/feedback` (in-process) and the deploy realized-performance asset on its rows."""

import io
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import dagster as dg
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mlops_assets.deploy import monitoring as deploy_monitoring
from resources.object_store import LocalObjectStore
from serving import feedback
from tests.monitoring.logrows import log_row, write_log


@pytest.fixture
def store(tmp_path):
    return LocalObjectStore(root=str(tmp_path / "objects"))


@pytest.fixture
def client(store):
    app = FastAPI()
    app.include_router(feedback.build_router(SimpleNamespace(store=store)))
    return TestClient(app)


def deploy_answer(deployment: str, value, day: datetime, prediction_id: str) -> dict:
    return log_row(
        "deploy",
        "/api/{deployment}/predict",
        {"bedrooms": 2},
        {"status": "COMPLETE", "body": value, "deployment": deployment, "model_version": "v1"},
        logged_at=day,
        prediction_id=prediction_id,
    )


def test_feedback_is_stored_for_a_logged_prediction(client, store):
    write_log(store, "deploy", [deploy_answer("paris", 100.0, datetime.now(UTC), "a" * 32)])
    response = client.post("/api/paris/feedback", json={"prediction_id": "a" * 32, "actual": 120.5})
    assert response.status_code == 201, response.text
    assert response.json()["deployment"] == "paris"
    [info] = store.list_objects("deploy/feedback/")
    assert "/hour=" in info.key
    [row] = pq.read_table(io.BytesIO(store.get_bytes(info.key))).to_pylist()
    assert row["prediction_id"] == "a" * 32 and row["deployment"] == "paris" and json.loads(row["actual"]) == 120.5


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"prediction_id": "b" * 32, "actual": 1}, 404, "prediction_id"),  # well formed, never answered
        ({"prediction_id": "not-an-id", "actual": 1}, 422, "prediction_id"),
        ({"actual": 1}, 422, "prediction_id"),
        ({"prediction_id": "a" * 32}, 422, "actual"),
        ({"prediction_id": "a" * 32, "actual": [1, 2]}, 422, "actual"),
        ({"prediction_id": "a" * 32, "actual": 1, "extra": 2}, 422, "extra"),
    ],
)
def test_bad_feedback_gets_a_4xx_naming_the_field(client, store, body, status, field):
    write_log(store, "deploy", [deploy_answer("paris", 100.0, datetime.now(UTC), "a" * 32)])
    response = client.post("/api/paris/feedback", json=body)
    assert response.status_code == status, response.text
    assert field in json.dumps(response.json()["detail"])
    assert not store.list_objects("deploy/feedback/")


def test_deploy_realized_performance_per_day_and_deployment(client, store):
    today = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    answers = [
        deploy_answer("paris", 100.5, yesterday, "1" * 32),
        deploy_answer("paris", 200.5, yesterday, "2" * 32),
        deploy_answer("paris", 300.5, today, "3" * 32),
        deploy_answer("paris", 50.5, today, "4" * 32),
        deploy_answer("titanic", 1, today, "5" * 32),
        deploy_answer("titanic", 0, today, "6" * 32),
    ]
    write_log(store, "deploy", answers)
    for pid, deployment, actual in [
        ("1" * 32, "paris", 110.5),
        ("2" * 32, "paris", 170.5),
        ("3" * 32, "paris", 300.5),
        ("5" * 32, "titanic", 1),
        ("6" * 32, "titanic", 1),
    ]:
        assert client.post(f"/api/{deployment}/feedback", json={"prediction_id": pid, "actual": actual}).is_success
    # A corrected value replaces the first one.
    assert client.post("/api/paris/feedback", json={"prediction_id": "3" * 32, "actual": 310.5}).is_success

    result = dg.materialize([deploy_monitoring.realized_performance], resources={"object_store": store})
    metadata = result.asset_materializations_for_node("deploy__realized_performance")[0].metadata
    assert metadata["paris MAE"].value == pytest.approx(10.0)  # today: |300.5 - 310.5|; yesterday was (10 + 30) / 2
    assert metadata["titanic accuracy"].value == pytest.approx(0.5)
    assert metadata["feedback_rows"].value == 5
    assert store.get_bytes("monitoring/deploy/realized_performance.png").startswith(b"\x89PNG")
    summary = json.loads(store.get_bytes("monitoring/deploy/realized_performance.json"))
    assert summary["figures"]["latest_paris MAE"] == pytest.approx(10.0)
    history = metadata["history"].value
    assert "20.000" in history  # yesterday's MAE for paris
