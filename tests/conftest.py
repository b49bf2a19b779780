"""Fixtures shared by every test: temporary platform state, the real data, moto_server S3, Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from resources.settings import PlatformSettings
from tests.support import (
    STATE_VARIABLES,
    free_port,
    platform_environment,
    require_shared_data,
    shared_data_dir,
    skip_or_fail,
    stop_process,
    wait_for_http,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Fixtures each costing a platform start or a server: the tests that use one run on the same xdist worker.
SHARED_EXPENSIVE_FIXTURES = ("live", "postgres", "team_platform")


def pytest_collection_modifyitems(items):
    """Under `--dist loadgroup` (dev.py test), tests that share an expensive fixture run on one worker: a session
    platform (`live`, `postgres`, `team_platform`), a system's package fixtures (a bootstrapped system, a uvicorn server), or a
    module's own servers; each would otherwise start once per worker."""
    for item in items:
        shared = next((name for name in SHARED_EXPENSIVE_FIXTURES if name in item.fixturenames), None)
        path = Path(str(item.path)).relative_to(Path(__file__).parent)
        group = shared or (path.parts[0] if len(path.parts) > 1 else str(path))
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture
def data_dir() -> Path:
    return require_shared_data()


@pytest.fixture
def platform_env(tmp_path, monkeypatch) -> dict[str, str]:
    """Every piece of platform state in a temporary folder; the real data wired in when present."""
    env = platform_environment(tmp_path / "mlops", shared_data_dir())
    for key in STATE_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def settings(platform_env) -> PlatformSettings:
    return PlatformSettings.from_env()


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real S3 protocol server (moto_server) on 127.0.0.1, stopped after the session."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(endpoint, timeout=30, process=process)
        yield endpoint
    finally:
        stop_process(process)


@pytest.fixture
def s3_env(platform_env, moto_endpoint, monkeypatch, request) -> dict[str, str]:
    """Platform env switched to the S3 object store on moto_server, with a fresh bucket per test."""
    bucket = "mlops-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + f"-{os.getpid()}"
    env = {
        "MLOPS_OBJECT_STORE": "s3",
        "MLOPS_S3_BUCKET": bucket,
        "MLOPS_S3_ENDPOINT_URL": moto_endpoint,
        "MLOPS_MLFLOW_ARTIFACT_ROOT": (Path(platform_env["MLOPS_HOME"]) / "mlartifacts").as_uri(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import boto3

    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return {**platform_env, **env}


@pytest.fixture
def chromium():
    """Debian's headless Chromium driven by Playwright (never a downloaded browser).

    One per test: Playwright's sync API keeps an asyncio loop running in the main thread while it is open, and
    Dagster's `evaluate_automation_conditions` (asyncio.run) fails in any later test of the same process."""
    if not CHROMIUM.exists():
        skip_or_fail("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    """`python3 dev.py up --no-bootstrap` (webserver, daemon, default run launcher, API) on a temporary home,
    shared by the tests that need the platform as it really runs; stopped, every process, after the session."""
    data = require_shared_data()
    from tests.live import live_platform

    with live_platform(tmp_path_factory.mktemp("live") / "mlops", data) as platform:
        yield platform
