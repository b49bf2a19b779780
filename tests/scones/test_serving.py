"""POST /scones/classify and the upload page, against a real uvicorn process serving the trained champion."""

from datetime import UTC

import httpx
import pytest
from PIL import Image

from tests.scones.helpers import encoded

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def server(scones_server):
    return scones_server


def test_classifies_a_test_image_with_lineage(server, scones_platform):
    path = scones_platform.data / "scones" / "test" / "bike_s_000658.png"  # label 0 in test.lst
    response = httpx.post(
        f"{server}/scones/classify",
        files={"file": (path.name, path.read_bytes(), "image/png")},
        params={"threshold": 0.5},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert sum(body["inferences"]) == pytest.approx(1.0)
    assert body["probabilities"]["bicycle"] == body["inferences"][0]
    assert body["predicted_class"] == "bicycle" and body["passed"] and body["verdict"] == "passed"
    lineage = body["lineage"]
    assert lineage["model_name"] == "scones_classifier" and lineage["model_version"] == "1"
    assert lineage["dagster_run_id"] and lineage["mlflow_run_id"]


@pytest.mark.parametrize(
    "files, params, status, message",
    [
        ({"file": ("a.png", b"not an image", "image/png")}, {}, 415, "not an image in any known format"),
        ({"file": ("a.png", b"", "image/png")}, {}, 422, "empty"),
        (
            {"file": ("a.tif", encoded(Image.new("RGB", (8, 8)), "TIFF"), "image/tiff")},
            {},
            415,
            "format TIFF is not accepted",
        ),
        ({"file": ("big.png", encoded(Image.new("1", (6000, 6000))), "image/png")}, {}, 413, "too large|pixels"),
        (
            {"file": ("a.png", encoded(Image.new("RGB", (32, 32))), "image/png")},
            {"threshold": 1.5},
            422,
            "less than or equal to 1",
        ),
        ({}, {}, 422, "Field required"),
    ],
)
def test_bad_uploads_get_clear_4xx(server, files, params, status, message):
    import re

    response = httpx.post(
        f"{server}/scones/classify", files=files or None, data=None if files else {"x": "1"}, params=params, timeout=30
    )
    assert response.status_code == status, response.text
    assert re.search(message, response.text)


def test_oversized_upload_is_refused_before_parsing(server):
    response = httpx.post(
        f"{server}/scones/classify", files={"file": ("huge.png", b"0" * (6 * 1024 * 1024), "image/png")}, timeout=30
    )
    assert response.status_code == 413
    assert "the image limit is 5,242,880 bytes" in response.json()["detail"][0]["msg"]


@pytest.mark.browser
def test_upload_page_in_chromium(server, scones_platform, chromium):
    path = scones_platform.data / "scones" / "test" / "bike_s_000658.png"
    page = chromium.new_page()
    try:
        page.goto(f"{server}/scones")
        assert "scones_classifier v1" in page.text_content("main")
        page.set_input_files("#file", str(path))
        page.fill("#threshold", "0.5")
        page.click("#classify")
        page.wait_for_selector("#result:not([hidden])", timeout=15000)
        assert page.text_content("#answer").startswith("bicycle")
        assert "scones_classifier v1 (champion)" in page.text_content("#lineage")
        page.set_input_files("#file", {"name": "notes.png", "mimeType": "image/png", "buffer": b"plain text"})
        page.click("#classify")
        page.wait_for_function("document.getElementById('error').textContent.length > 0", timeout=15000)
        assert "file: the file is not an image" in page.text_content("#error")
        assert page.is_hidden("#result")
    finally:
        page.close()


@pytest.fixture
def scones_log_alone(scones_platform):
    from resources import build_object_store
    from tests.monitoring.logrows import log_set_aside

    with log_set_aside(build_object_store(scones_platform.settings), "scones"):
        yield


@pytest.mark.browser
def test_overview_page_shows_the_champion_and_the_image_drift_in_chromium(
    server, scones_platform, scones_log_alone, chromium
):
    """Logged classifications of real test images, answered with low confidence: the drift asset (run in the
    package's platform) flags the confidence, and the overview at / shows it next to the champion."""
    from datetime import datetime

    import dagster as dg

    from mlops_assets.scones.drift import image_statistics
    from resources import build_object_store
    from tests.monitoring.logrows import log_row, write_log

    images = sorted((scones_platform.data / "scones" / "test").glob("*.png"))[::5]  # bicycles and motorcycles
    now = datetime.now(UTC)
    rows = [
        log_row(
            "scones",
            "/scones/classify",
            image_statistics(path.read_bytes()),
            {"predicted_class": "bicycle", "confidence": 0.5 + 0.002 * n},
            logged_at=now,
        )
        for n, path in enumerate(images)
    ]
    write_log(build_object_store(scones_platform.settings), "scones", rows)
    result = dg.materialize(
        list(scones_platform.definitions.assets),
        selection=[dg.AssetKey(["scones", "input_drift"])],
        instance=scones_platform.instance,
        resources=scones_platform.definitions.resources,
    )
    metadata = result.asset_materializations_for_node("scones__input_drift")[0].metadata
    assert "confidence" in metadata["drifted"].value
    assert not {"width", "height"} & set(metadata["drifted"].value)  # 32x32 like the training images
    share = metadata["drift_share"].value

    page = chromium.new_page()
    try:
        page.goto(f"{server}/")
        scones = page.locator("#system-scones")
        assert "champion v1" in scones.locator(".champion").text_content()
        assert "accuracy" in scones.text_content()
        assert scones.locator("a.mlflow-run").get_attribute("href").startswith("http://127.0.0.1:5000/#/experiments/")
        assert f"drift share {share:.2f}" in " ".join(scones.locator(".drift").text_content().split())
        # The test's 40 answers, and any the server flushed after the log was set aside (it writes every second).
        logged = metadata["current_rows"].value
        assert logged >= len(rows)
        assert f"{logged} logged answers" in scones.locator(".drift").text_content()
        assert "last monitoring materialization" in scones.locator(".last-materialized").text_content()
        chart = scones.locator('img[src="/overview/charts/scones/input_drift.png"]')
        page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=chart.element_handle())
        assert "no champion of titanic_modal yet" in page.locator("#system-titanic").text_content()
        assert page.locator("#system-steam a").first.get_attribute("href") == "/steam"
        scones.locator(".drift a").click()
        page.wait_for_load_state()
        assert page.url.endswith("/overview/reports/scones/input_drift.html")
        assert "confidence" in page.content()
    finally:
        page.close()
