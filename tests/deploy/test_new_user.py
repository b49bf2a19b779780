"""As a new user: train a Pipeline on scikit-learn's bundled wine data, save it with skops, deploy it with the
`mlops` CLI alone (a subprocess), and use it through the API and the generated form in headless Chromium; then
undeploy it. The platform is live: the object store in a temporary folder, a Dagster instance on disk whose deploy
sensor is ticked in-process exactly as the daemon would tick it, and a real uvicorn server."""

from __future__ import annotations

import functools
import json
import os
import subprocess

import dagster as dg
import pytest

from mlops_assets import deploy
from mlops_assets.deploy import automation as deploy_automation
from resources import build_resources
from resources.settings import PlatformSettings
from tests.deploy.test_live import call
from tests.support import REPO_ROOT, isolated_environment, standalone_environment, uvicorn_server, wait_for

MLOPS = REPO_ROOT / ".venv" / "bin" / "mlops"


wait_for = functools.partial(wait_for, interval=0.2)  # polls a live server


def served(base: str, name: str):
    return {d["name"]: d["served"] for d in call(f"{base}/api/deployments")[1]}.get(name)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """(env, tick, base URL, folder): tick() runs one deploy sensor evaluation and the runs it requests."""
    home = tmp_path_factory.mktemp("new_user")
    env = {
        **standalone_environment(home / "mlops", None),
        "MLOPS_SERVING_POLL_SECONDS": "0.2",
        "MLOPS_MODEL_BUCKET": "",
    }
    (home / "dagster_home").mkdir()
    with isolated_environment(env), dg.DagsterInstance.local_temp(str(home / "dagster_home")) as instance:
        settings = PlatformSettings.from_env()
        defs = dg.Definitions.merge(
            dg.Definitions(resources=build_resources(settings), executor=dg.in_process_executor), deploy.defs
        )
        with uvicorn_server(env, log_path=home / "uvicorn.log", startup_timeout=600) as base:
            yield env, lambda: deploy_automation.release_now(defs, instance), base, home, instance


def mlops(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MLOPS), *args], cwd=REPO_ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    import skops.io as sio
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folder = tmp_path_factory.mktemp("wine")
    X, y = load_wine(return_X_y=True, as_frame=True)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    sio.dump(pipeline, folder / "wine.skops")
    example = {k: float(v) for k, v in X.iloc[60].to_dict().items()}  # a class-1 wine
    (folder / "example.json").write_text(json.dumps(example))
    unfitted = make_pipeline(StandardScaler(), LogisticRegression())
    sio.dump(unfitted, folder / "unfitted.skops")
    sio.dump(LogisticRegression().fit(X, y), folder / "bare.skops")
    (folder / "bad_example.json").write_text(json.dumps({**example, "colour": 3.0}))
    return folder, pipeline, X.iloc[[60]], example


def test_a_model_that_cannot_be_served_is_refused_with_one_line(platform, wine):
    env, _, _, _, _ = platform
    folder = wine[0]
    cases = [
        (["wine", str(folder / "bare.skops")], "not a scikit-learn Pipeline"),
        (
            ["wine", str(folder / "wine.skops"), "--example", str(folder / "bad_example.json")],
            "unknown column(s) 'colour'",
        ),
        (
            ["wine", str(folder / "unfitted.skops"), "--example", str(folder / "example.json")],
            "check predicts_raw_example_to_number failed",
        ),
    ]
    for args, message in cases:
        result = mlops(env, "deploy", *args)
        assert result.returncode != 0 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "no deployments" in mlops(env, "deployments").stdout  # nothing was stored


@pytest.mark.browser
def test_deploy_predict_through_the_api_and_the_form_then_undeploy(platform, wine, chromium):
    env, tick, base, _, instance = platform
    folder, pipeline, row, example = wine
    result = mlops(
        env, "deploy", "wine", str(folder / "wine.skops"), "--example", str(folder / "example.json"), "--tag", "1.0"
    )
    assert result.returncode == 0, result.stderr
    assert "deployed: wine" in result.stdout and "inferred form" in result.stdout

    runs = tick()  # the daemon's sensor tick: a partition for `wine` and one release run
    assert [r.success for r in runs] == [True] and instance.get_dynamic_partitions("deployments") == ["wine"]
    assert "passed (3/3)" in mlops(env, "deployments").stdout
    record = wait_for(lambda: served(base, "wine"), "wine not served")
    assert record["tag"] == "1.0"

    status, accepted = call(f"{base}/api/wine/predict", example)
    assert status == 202
    done = call(f"{base}/api/predict/{accepted['prediction_id']}?wait=5")[1]
    assert done["status"] == "COMPLETE" and done["body"] == float(pipeline.predict(row)[0]) == 1.0
    status, refused = call(f"{base}/api/wine/predict", {**example, "alcohol": True})
    assert status == 422 and refused["detail"][0]["loc"] == ["body", "alcohol"]
    schema = call(f"{base}/openapi.json")[1]
    body = schema["paths"]["/api/wine/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == set(example) and set(body["required"]) == set(example)

    page = chromium.new_page()
    try:
        page.goto(f"{base}/deploy/wine/form")
        for name, value in example.items():
            page.fill(f'[id="field-{name}"]', str(value))
        page.click("#submit")
        page.wait_for_function("document.getElementById('result').textContent.startsWith('Estimation:')", timeout=20000)
        assert page.text_content("#result").split()[1] == "1"
    finally:
        page.close()

    result = mlops(env, "undeploy", "wine")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: call(f"{base}/api/wine/predict", example)[0] == 404, "wine still answers")
    assert "/api/wine/predict" not in call(f"{base}/openapi.json")[1]["paths"]
    assert tick() == [] and instance.get_dynamic_partitions("deployments") == []
