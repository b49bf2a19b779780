"""The overview page at `/`, in-process: it renders with nothing materialized, then shows what the monitoring
assets wrote (figures, charts, failed checks, links). The Chromium test is in tests/scones/test_serving.py."""

import re
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from mlops_assets.common.monitoring import warn_result, write_summary
from serving.app import create_app
from tests.support import isolated_environment, platform_environment

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 16


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """One app for the module: its first registry lookup creates the MLflow database, seconds on a busy machine.
    The first test runs before anything is written."""
    env = {
        **platform_environment(tmp_path_factory.mktemp("overview") / "mlops", None),
        "MLOPS_DAGSTER_UI_URL": "http://dagster.example:3000/",
    }
    with isolated_environment(env):
        app = create_app()
        yield TestClient(app), app.state.ctx


def card(html: str, system: str) -> str:
    match = re.search(rf'<div class="card system" id="system-{system}">(.*?)\n</div>', html, re.S)
    assert match, f"no card for {system}"
    return match.group(1)


def test_overview_renders_with_nothing_materialized(client):
    http, _ = client
    response = http.get("/")
    assert response.status_code == 200
    for system in ("titanic", "deploy", "scones", "steam", "pistachio"):
        assert "no monitoring asset materialized yet" in card(response.text, system)
    assert "no champion of titanic_modal yet" in card(response.text, "titanic")
    assert "no registered model" in card(response.text, "steam")
    assert 'href="http://dagster.example:3000/asset-groups/pistachio"' in response.text
    assert http.get("/overview/charts/titanic/realized_performance.png").status_code == 404
    assert http.get("/overview/reports/titanic/input_drift.html").status_code == 404


def test_overview_shows_the_monitoring_summaries(client):
    http, ctx = client
    store = ctx.store
    context = SimpleNamespace(run=SimpleNamespace(run_id="run-1"))
    store.put_bytes("monitoring/titanic/drift_reports/run-1.html", b"<html>evidently</html>")
    write_summary(
        store,
        context,
        "titanic",
        "input_drift",
        {"drift_share": 0.6, "drifted_features": 3, "features": 5, "current_rows": 40},
        checks=[warn_result("drift_share_below_threshold", False, "3 of 5 features drifted")],
        report_key="monitoring/titanic/drift_reports/run-1.html",
    )
    store.put_bytes("monitoring/titanic/realized_performance.png", PNG)
    write_summary(
        store,
        context,
        "titanic",
        "realized_performance",
        {"latest_rolling_accuracy": 0.8125},
        charts={"realized performance": "monitoring/titanic/realized_performance.png"},
        checks=[warn_result("realized_performance_holds", True, "fine")],
    )
    html = http.get("/").text
    titanic = card(html, "titanic")
    assert "drift share <strong>0.60</strong>" in titanic and "40 logged answers" in titanic
    assert "rolling_accuracy <strong>0.812</strong>" in titanic
    assert "input_drift: drift_share_below_threshold failed: 3 of 5 features drifted" in titanic
    assert "realized_performance_holds failed" not in titanic
    assert "last monitoring materialization" in titanic and "s ago" in titanic
    assert 'src="/overview/charts/titanic/realized_performance.png"' in titanic
    assert 'href="http://dagster.example:3000/assets/titanic/input_drift"' in titanic
    assert "no monitoring asset materialized yet" in card(html, "pistachio")
    assert http.get("/overview/charts/titanic/realized_performance.png").content == PNG
    assert http.get("/overview/reports/titanic/input_drift.html").text == "<html>evidently</html>"
    assert http.get("/overview/charts/titanic/..%2F..%2Fsecret.png").status_code == 404
