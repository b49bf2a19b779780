"""Real uvicorn processes: queue durability across a restart, and the generated form in headless Chromium."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest

from resources import build_object_store
from resources.model_bucket import build_model_bucket
from resources.settings import PlatformSettings
from serving.deploy_queue import DeployQueue
from tests.deploy.helpers import DEPLOYMENTS, broken_pipeline, pickle_bytes, upload_and_deploy
from tests.support import standalone_environment, uvicorn_server

EXAMPLE = DEPLOYMENTS["paris_airbnb_price"].raw_example


def call(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_served(base: str, name: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        served = {d["name"]: d["served"] for d in call(f"{base}/api/deployments")[1]}
        if served.get(name):
            return served[name]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not served after {timeout}s: {served}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def live_env(tmp_path_factory, paris_skops) -> dict[str, str]:
    """Platform state in a temporary folder (module scope: every uvicorn start costs seconds)."""
    home = tmp_path_factory.mktemp("live")
    env = {**standalone_environment(home, None), "MLOPS_SERVING_POLL_SECONDS": "0.2", "MLOPS_MODEL_BUCKET": ""}
    settings = PlatformSettings.from_env(env)
    store, bucket = build_object_store(settings), build_model_bucket(settings, env)
    upload_and_deploy(store, bucket, "paris_airbnb_price", paris_skops)
    upload_and_deploy(store, bucket, "titanic_survival", pickle_bytes(broken_pipeline()), key="broken.pkl")
    return env


@pytest.fixture(scope="module")
def restarted(live_env, tmp_path_factory):
    """Requests accepted by an API-only server that then stops, plus one claimed by a crashed worker; then a
    fresh server with its worker starts. Yields (base URL, accepted ids, orphan id, queue path)."""
    logs = tmp_path_factory.mktemp("logs")
    with uvicorn_server({**live_env, "MLOPS_DEPLOY_WORKER": "0"}, log_path=logs / "a.log") as base:
        wait_served(base, "paris_airbnb_price")
        accepted = [call(f"{base}/api/paris_airbnb_price/predict", EXAMPLE) for _ in range(5)]
        assert all(status == 202 for status, _ in accepted)
        ids = [body["prediction_id"] for _, body in accepted]
        assert {call(f"{base}/api/predict/{i}")[1]["status"] for i in ids} == {"PENDING"}

    queue_path = PlatformSettings.from_env(live_env).home / "serving" / "deploy_queue.db"
    queue = DeployQueue(queue_path)
    orphan = queue.enqueue("paris_airbnb_price", EXAMPLE)
    # The oldest request was claimed by a worker of this host whose process no longer exists:
    assert queue.claim(f"{socket.gethostname()}:999999999:crashed").prediction_id == ids[0]
    queue.close()

    with uvicorn_server(live_env, log_path=logs / "b.log") as base:
        yield base, ids, orphan, queue_path


def test_pending_requests_survive_a_restart_and_are_done_once(restarted):
    base, ids, orphan, queue_path = restarted
    deadline = time.monotonic() + 60
    results = {}
    while time.monotonic() < deadline and len(results) < 6:
        for prediction_id in [*ids, orphan]:
            body = call(f"{base}/api/predict/{prediction_id}")[1]
            if body["status"] != "PENDING":
                results[prediction_id] = body
        time.sleep(0.1)
    assert {r["status"] for r in results.values()} == {"COMPLETE"} and len(results) == 6
    assert len({r["body"] for r in results.values()}) == 1  # same input, same model, same value
    rows = DeployQueue(queue_path)
    attempts = {i: rows.get(i).attempts for i in [*ids, orphan]}
    assert attempts == {**{i: 1 for i in ids}, ids[0]: 2, orphan: 1}  # only the crashed claim was retried


@pytest.mark.browser
def test_form_shows_estimation_field_errors_and_stops_polling_on_error(restarted, chromium):
    base = restarted[0]
    wait_served(base, "paris_airbnb_price")
    wait_served(base, "titanic_survival")
    page = chromium.new_page()
    try:
        page.goto(f"{base}/deploy/paris_airbnb_price")
        assert "Trained on generated data" in page.content()
        page.goto(f"{base}/deploy/paris_airbnb_price/form")
        page.select_option("#field-neighbourhood", "Buttes-Montmartre")
        page.select_option("#field-room_type", "Entire home/apt")
        for name in ("minimum_nights", "mois", "voyageurs", "chambres", "lits", "salle_de_bains"):
            page.fill(f"#field-{name}", str(EXAMPLE[name]))
        page.click("#submit")
        page.wait_for_function("document.getElementById('result').textContent.startsWith('Estimation:')", timeout=15000)
        text = page.text_content("#result")
        assert text.endswith("€ per night") and float(text.split()[1]) > 0

        page.fill("#field-mois", "13")
        page.click("#submit")
        page.wait_for_function("document.getElementById('error-mois').textContent.length > 0", timeout=10000)
        assert "less than or equal to 12" in page.text_content("#error-mois")
        assert page.text_content("#error-voyageurs") == ""

        polls: list[str] = []
        page.on("request", lambda request: polls.append(request.url) if "/api/predict/" in request.url else None)
        page.goto(f"{base}/deploy/titanic_survival/form")
        page.fill("#field-Age", "30")
        page.fill("#field-SibSp", "0")
        page.fill("#field-Parch", "0")
        page.fill("#field-Fare", "20")
        page.click("#submit")
        page.wait_for_function("document.getElementById('result').textContent.startsWith('Error:')", timeout=15000)
        assert "this model always fails" in page.text_content("#result")
        seen = len(polls)
        page.wait_for_timeout(2500)
        assert len(polls) == seen  # polling stopped on ERROR (the original polled forever)
    finally:
        page.close()
