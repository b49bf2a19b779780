"""POST /scones/classify and the upload page, against a real uvicorn process serving the trained champion."""

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
    response = httpx.post(f"{server}/scones/classify", files={"file": (path.name, path.read_bytes(), "image/png")},
                          params={"threshold": 0.5}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert sum(body["inferences"]) == pytest.approx(1.0)
    assert body["probabilities"]["bicycle"] == body["inferences"][0]
    assert body["predicted_class"] == "bicycle" and body["passed"] and body["verdict"] == "passed"
    lineage = body["lineage"]
    assert lineage["model_name"] == "scones_classifier" and lineage["model_version"] == "1"
    assert lineage["dagster_run_id"] and lineage["mlflow_run_id"]


@pytest.mark.parametrize("files, params, status, message", [
    ({"file": ("a.png", b"not an image", "image/png")}, {}, 415, "not an image in any known format"),
    ({"file": ("a.png", b"", "image/png")}, {}, 422, "empty"),
    ({"file": ("a.tif", encoded(Image.new("RGB", (8, 8)), "TIFF"), "image/tiff")}, {}, 415, "format TIFF is not accepted"),
    ({"file": ("big.png", encoded(Image.new("1", (6000, 6000))), "image/png")}, {}, 413, "too large|pixels"),
    ({"file": ("a.png", encoded(Image.new("RGB", (32, 32))), "image/png")}, {"threshold": 1.5}, 422, "less than or equal to 1"),
    ({}, {}, 422, "Field required"),
])
def test_bad_uploads_get_clear_4xx(server, files, params, status, message):
    import re

    response = httpx.post(f"{server}/scones/classify", files=files or None, data=None if files else {"x": "1"},
                          params=params, timeout=30)
    assert response.status_code == status, response.text
    assert re.search(message, response.text)


def test_oversized_upload_is_refused_before_parsing(server):
    response = httpx.post(f"{server}/scones/classify", files={"file": ("huge.png", b"0" * (6 * 1024 * 1024), "image/png")},
                          timeout=30)
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
