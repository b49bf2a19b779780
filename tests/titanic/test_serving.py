"""The serving API through a real uvicorn process, and the pages in headless Chromium."""

import itertools
import time

import httpx
import pandas as pd
import pytest

from mlops_assets.titanic import assets as titanic_assets
from mlops_assets.titanic.constants import AGE_BANDS, FARE_BANDS, FEATURES, MODEL_NAME, PORT_NAMES
from mlops_assets.titanic.features import prepare_passengers
from resources import build_registry
from resources.mlflow_registry import CHAMPION
from tests.support import uvicorn_server, wait_until_loaded

PASSENGER = {"age_band": "25-30", "port": "Cherbourg", "sex": "female", "fare_band": "50-75", "pclass": 1}


@pytest.fixture(scope="module")
def api(titanic_platform, tmp_path_factory):
    log = tmp_path_factory.mktemp("uvicorn") / "titanic.log"
    with uvicorn_server(titanic_platform.env, log_path=log) as base:
        wait_until_loaded(base, f"ChampionWatcher:{MODEL_NAME}")
        yield base


def test_predict_answers_with_lineage(api, titanic_platform):
    response = httpx.post(f"{api}/titanic/predict", json=PASSENGER)
    assert response.status_code == 200, response.text
    body = response.json()
    champion = build_registry(titanic_platform.settings).version_by_alias(MODEL_NAME, CHAMPION)
    assert body["lineage"]["model_name"] == MODEL_NAME
    assert body["lineage"]["model_version"] == str(champion.version)
    assert body["lineage"]["mlflow_run_id"] == champion.run_id
    assert body["lineage"]["dagster_run_id"] == champion.tags["dagster_run_id"]
    experiment = build_registry(titanic_platform.settings).client().get_run(champion.run_id).info.experiment_id
    assert body["lineage"]["mlflow_run_url"] == (
        f"http://127.0.0.1:5000/#/experiments/{experiment}/runs/{champion.run_id}"
    )
    # Cherbourg is port code 1 in training (S=0, C=1, Q=2); the original's form sent 0.
    assert body["features"]["embarked_encoded"] == 1
    assert body["survived"] == (body["fate"] == "survived")
    assert 0.0 <= body["probability_survived"] <= 1.0
    assert httpx.get(f"{api}{body['image_url']}").content.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"port": "Paris"}, "port"),
        ({"pclass": 4}, "pclass"),
        ({"age_band": None}, "age_band"),
        ({"sex": "other"}, "sex"),
        ({"cabin": "B5"}, "cabin"),
        ({"fare_band": 3}, "fare_band"),
        ({"fare_band": 12.5}, "fare_band"),
        ({"fare_band": True}, "fare_band"),
        ({"fare_band": "200-300"}, "fare_band"),
        ({"fare_band": "150"}, "fare_band"),
        ({"fare_band": None}, "fare_band"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(api, change, field):
    body = {**PASSENGER, **change}
    response = httpx.post(f"{api}/titanic/predict", json=body)
    assert response.status_code == 422
    assert field in [error["loc"][-1] for error in response.json()["detail"]]


def representative(band: str) -> float:
    """A raw value inside a form band ("25-30" -> 27.5, "50+" -> 75), to be banded by the training code."""
    low, _, high = band.rstrip("+").partition("-")
    return (float(low) + float(high)) / 2 if high else float(low) * 1.5


def test_served_answers_are_the_champions_own_predictions_over_the_whole_form(api, titanic_platform):
    form = list(itertools.product(AGE_BANDS, PORT_NAMES, ("male", "female"), FARE_BANDS, (1, 2, 3)))
    assert len(form) == 882
    with httpx.Client(base_url=api, timeout=30) as client:
        served = []
        for age, port, sex, fare, pclass in form:
            response = client.post(
                "/titanic/predict",
                json={"age_band": age, "port": port, "sex": sex, "fare_band": fare, "pclass": pclass},
            )
            assert response.status_code == 200, response.text
            served.append(response.json())
    versions = {answer["lineage"]["model_version"] for answer in served}
    assert len(versions) == 1
    # The same passengers as raw rows, encoded by the training pipeline's own code (not the server's mapping).
    raw = pd.DataFrame(
        [
            {
                "PassengerId": i,
                "Survived": 0,
                "Pclass": pclass,
                "Sex": sex,
                "Age": representative(age),
                "Fare": representative(fare),
                "Embarked": port[0],
            }
            for i, (age, port, sex, fare, pclass) in enumerate(form)
        ]
    )
    features = prepare_passengers(raw)[FEATURES]
    model = build_registry(titanic_platform.settings).load_sklearn(f"models:/{MODEL_NAME}/{versions.pop()}")
    expected_fates = model.predict(features)
    expected_p = model.predict_proba(features)[:, list(model.classes_).index(1)]
    rows = features.to_dict(orient="records")
    for i, answer in enumerate(served):
        assert answer["features"] == rows[i], form[i]
        assert answer["survived"] == bool(expected_fates[i]), form[i]
        assert answer["fate"] == ("survived" if expected_fates[i] else "did not survive"), form[i]
        assert answer["probability_survived"] == pytest.approx(expected_p[i], abs=5e-5), form[i]
    assert 0 < sum(expected_fates) < len(form)  # both fates occur: an inverted answer cannot pass


def test_malformed_json_is_a_422(api):
    response = httpx.post(f"{api}/titanic/predict", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_unknown_picture_is_a_404_not_a_500(api):
    assert httpx.get(f"{api}/titanic/images/secrets.png").status_code == 422
    assert httpx.get(f"{api}/titanic/recent").status_code == 200


def test_a_newly_promoted_model_is_served_without_restart(api, titanic_platform, monkeypatch):
    before = httpx.post(f"{api}/titanic/predict", json=PASSENGER).json()["lineage"]
    # Another seed: unchanged inputs would skip the training and register nothing new.
    monkeypatch.setitem(titanic_assets.MODEL_PARAMS, "random_state", 7)
    result = titanic_platform.job("titanic_training").execute_in_process(instance=titanic_platform.instance)
    registry = build_registry(titanic_platform.settings)
    trained = result.asset_materializations_for_node("titanic__survival_model")[0].metadata["model_version"].value
    registry.set_alias(MODEL_NAME, CHAMPION, trained)  # whatever the gate decided: serving follows the alias
    champion = registry.version_by_alias(MODEL_NAME, CHAMPION)
    assert str(champion.version) != before["model_version"]
    deadline = time.monotonic() + 10
    while True:
        served = httpx.post(f"{api}/titanic/predict", json=PASSENGER).json()["lineage"]
        if served["model_version"] == str(champion.version):
            break
        assert time.monotonic() < deadline, f"still serving v{served['model_version']}"
        time.sleep(0.2)
    assert served["dagster_run_id"] == champion.tags["dagster_run_id"] != before["dagster_run_id"]


@pytest.mark.browser
def test_predictor_page_in_chromium(api, chromium):
    page = chromium.new_page()
    try:
        page.goto(f"{api}/titanic")
        page.select_option("#age_band", "0-7.5")
        page.select_option("#port", "Queenstown")
        page.select_option("#sex", "female")
        page.select_option("#fare_band", "25-50")
        page.select_option("#pclass", "2")
        page.click("#predict")
        page.wait_for_selector("#result:not([hidden])", timeout=10_000)
        expected = httpx.post(
            f"{api}/titanic/predict",
            json={"age_band": "0-7.5", "port": "Queenstown", "sex": "female", "fare_band": "25-50", "pclass": 2},
        ).json()
        assert page.inner_text("#fate").startswith(f"Predicted: {expected['fate']}")
        page.wait_for_function("document.getElementById('fate-image').naturalWidth > 0", timeout=10_000)
        assert f"v{expected['lineage']['model_version']}" in page.inner_text("#lineage")
        assert page.inner_text("#error") == ""
    finally:
        page.close()


@pytest.mark.browser
def test_dashboard_page_in_chromium(api, chromium, titanic_platform):
    page = chromium.new_page()
    try:
        page.goto(f"{api}/titanic/dashboard")
        for name in ("latest_passenger", "actual_fate", "df_recent"):
            page.wait_for_function(
                f"document.querySelector('#{name} img') && document.querySelector('#{name} img').naturalWidth > 0",
                timeout=10_000,
            )
        rows = page.locator("#recent tbody tr")
        assert rows.count() == 3
        recent = httpx.get(f"{api}/titanic/recent").json()
        assert rows.first.inner_text().split("\t")[0] == recent[0]["date"]
    finally:
        page.close()
