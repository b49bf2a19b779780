"""POST /classify: the seed's request and answer, the lineage receipt, errors, and champion switching."""

import time

import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mlops_assets.pistachio.constants import CLASS_LABELS, FEATURES, MODEL_NAME
from mlops_assets.pistachio.model_file import load_pipeline
from resources import CHAMPION
from serving import hot_path, pistachio
from serving.context import ServingContext

SAMPLE = dict(pistachio.EXAMPLE)


def make_client(settings, hot: bool = True) -> tuple[TestClient, ServingContext]:
    """As `serving.app` composes it: with the hot-path layer in front of the route (hot=False: the route only)."""
    ctx = ServingContext.from_settings(settings, poll_seconds=0.2)
    app = FastAPI()
    app.include_router(pistachio.build_router(ctx))
    if hot:
        hot_path.install(app, ctx.hot_paths)
    ctx.poller.start()
    return TestClient(app), ctx


def wait_for_champion(ctx: ServingContext, timeout: float = 30) -> None:
    """The first load runs in the poller thread (the server answers 503 meanwhile)."""
    deadline = time.monotonic() + timeout
    while ctx.poller.watchers[0].current is None:
        assert time.monotonic() < deadline, "the champion was not loaded"
        time.sleep(0.05)


@pytest.fixture
def client(bootstrapped):
    client, ctx = make_client(bootstrapped.settings)
    try:
        wait_for_champion(ctx)
        yield client
    finally:
        ctx.poller.stop()


def test_classify_answers_like_the_original_plus_lineage(client, bootstrapped):
    response = client.post("/classify", json=SAMPLE)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"Type", "Model", "lineage", "prediction_id"}
    assert body["Type"] in CLASS_LABELS and body["Model"] == MODEL_NAME
    champion = bootstrapped.resource("mlflow").version_by_alias(MODEL_NAME, CHAMPION)
    assert body["lineage"]["model_version"] == str(champion.version)
    assert body["lineage"]["alias"] == CHAMPION
    assert body["lineage"]["mlflow_run_id"] == champion.run_id
    assert body["lineage"]["dagster_run_id"] == champion.tags["dagster_run_id"]


def test_fast_path_agrees_with_the_pipeline_on_real_rows(client, bootstrapped, data_dir):
    rows = pd.read_csv(data_dir / "pistachio" / "pistachio.csv").rename(columns=str.lower).iloc[::17]
    records = rows[list(FEATURES)].to_dict(orient="records")
    pipeline = load_pipeline(bootstrapped.resource("mlflow"), f"models:/{MODEL_NAME}@{CHAMPION}")
    expected = [CLASS_LABELS[label] for label in pipeline.predict(records)]
    answered = [client.post("/classify", json=record).json()["Type"] for record in records]
    assert answered == expected and len(set(expected)) == 2


def test_hot_path_and_route_answer_byte_for_byte_alike(client, bootstrapped, data_dir):
    route_only, ctx = make_client(bootstrapped.settings, hot=False)
    try:
        wait_for_champion(ctx)
        rows = pd.read_csv(data_dir / "pistachio" / "pistachio.csv").rename(columns=str.lower).iloc[::97]
        for record in rows[list(FEATURES)].to_dict(orient="records"):
            hot, routed = client.post("/classify", json=record), route_only.post("/classify", json=record)
            # Byte for byte up to each answer's own prediction_id, the last member of both.
            same = lambda r: (r.status_code, r.content.rsplit(b',"prediction_id":', 1)[0])
            assert same(hot) == same(routed) == (200, same(routed)[1])
            assert hot.json()["prediction_id"] != routed.json()["prediction_id"]
            assert hot.headers["content-type"] == routed.headers["content-type"] == "application/json"
    finally:
        ctx.poller.stop()


@pytest.mark.parametrize(
    "change, fields",
    [
        ({"area": None, "roundness": None}, {"area", "roundness"}),  # missing
        ({"perimeter": "wide"}, {"perimeter"}),  # not a number
        ({"extent": "NaN"}, {"extent"}),  # not finite
    ],
)
def test_bad_features_are_422_naming_them(client, change, fields):
    body = {k: v for k, v in {**SAMPLE, **change}.items() if not (k in change and change[k] is None)}
    response = client.post("/classify", json=body)
    assert response.status_code == 422
    named = {error["loc"][-1] for error in response.json()["detail"]}
    assert named == fields


def test_not_json_is_422(client):
    response = client.post("/classify", content=b"area=1", headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_no_champion_yet_is_503(settings):
    client, ctx = make_client(settings)
    try:
        response = client.post("/classify", json=SAMPLE)
        assert response.status_code == 503 and "no Pistachio_Classifier champion" in response.json()["detail"]
        assert "No champion yet" in client.get("/pistachio").text
    finally:
        ctx.poller.stop()


def test_switches_to_a_newly_promoted_champion_within_seconds(client, bootstrapped):
    registry = bootstrapped.resource("mlflow")
    current = registry.version_by_alias(MODEL_NAME, CHAMPION).version
    other = "1" if str(current) != "1" else "2"
    assert client.post("/classify", json=SAMPLE).json()["lineage"]["model_version"] == str(current)
    registry.set_alias(MODEL_NAME, CHAMPION, other)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if client.post("/classify", json=SAMPLE).json()["lineage"]["model_version"] == other:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the serving layer kept the old champion for 10 s")
    finally:
        registry.set_alias(MODEL_NAME, CHAMPION, current)


def test_home_page_has_the_form_and_the_champion(client, bootstrapped):
    page = client.get("/pistachio")
    assert page.status_code == 200
    assert all(f'name="{name}"' in page.text for name in FEATURES)
    assert f"Serving {MODEL_NAME} v" in page.text
