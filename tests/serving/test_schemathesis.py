"""The served OpenAPI document tells the truth: schemathesis, with all its checks, finds 0 failures against a live
uvicorn in which every system is loaded (a 503 counts as a server error, so nothing may be missing).

The models are small stand-ins registered in a real MLflow registry under the production names and aliases
(what the serving layer loads), the Steam answers a small published snapshot, the deploy system the demo Paris
Pipeline; the dashboard pictures are absent on purpose, so their documented 404 is exercised too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from mlops_assets.steam.constants import SNAPSHOT_FORMAT
from resources import CHAMPION, build_object_store, build_registry
from resources.model_bucket import build_model_bucket
from resources.settings import PlatformSettings
from resources.snapshots import publish_snapshot
from tests.support import standalone_environment, uvicorn_server, wait_until_loaded

MAX_EXAMPLES = 25  # per operation and phase; the whole run stays around a minute
# The one thing JSON Schema cannot say: that the uploaded bytes decode as an image. Bytes that do not are refused
# with the documented 415/422, which schemathesis' positive-data check would otherwise count as a rejection of
# valid data; every other operation keeps the default expectations.
CONFIG = """
[[operations]]
include-path = "/scones/classify"
include-method = "POST"

[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "404", "415", "422"]

# A well-formed prediction id that was never answered is refused with the documented 404.
[[operations]]
include-path = "/api/{deployment}/feedback"
include-method = "POST"

[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "404"]
"""


def register_champion(registry, name: str, model, **log_kwargs) -> None:
    with registry.start_run(name, run_name="schemathesis stand-in") as run:
        info = registry.log_sklearn_model(model, **log_kwargs)
    version = registry.register(name, info.model_uri, run.info.run_id, tags={"dagster_run_id": "stand-in"})
    registry.set_alias(name, CHAMPION, version.version)


def steam_answers() -> dict[str, bytes]:
    files = {
        "game_names.json": {"10": "Counter-Strike", "20": "Team Fortress Classic"},
        "playtime_genre.json": {"Action": 2003},
        "user_for_genre.json": {"Action": {"user_id": "gamer", "years": [{"year": 2003, "hours": 12}]}},
        "users_recommend.json": {"2015": [{"rank": 1, "name": "Counter-Strike"}]},
        "users_not_recommend.json": {"2015": [{"rank": 1, "name": "Team Fortress Classic"}]},
        "sentiment.json": {"2015": {"Negative": 1, "Neutral": 2, "Positive": 3}},
        "game_recommendations.json": {"10": ["20"]},
        "user_recommendations.json": {"gamer": ["20"]},
        "user_ids_lower.json": {"gamer": "gamer"},
    }
    return {name: json.dumps(value).encode() for name, value in files.items()}


@pytest.fixture(scope="module")
def loaded_platform(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression

    from mlops_assets.pistachio.constants import FEATURES as PISTACHIO_FEATURES
    from mlops_assets.pistachio.constants import MODEL_NAME as PISTACHIO
    from mlops_assets.pistachio.features import TRUSTED_MODEL_TYPES
    from mlops_assets.pistachio.sweep import Config, build_pipeline
    from mlops_assets.scones.constants import MODEL_NAME as SCONES
    from mlops_assets.titanic.constants import FEATURES as TITANIC_FEATURES
    from mlops_assets.titanic.constants import MODEL_NAME as TITANIC
    from tests.deploy.helpers import skops_bytes, small_paris_pipeline, upload_and_deploy

    home = tmp_path_factory.mktemp("schemathesis")
    env = {**standalone_environment(home / "mlops", None), "MLOPS_MODEL_BUCKET": ""}
    settings = PlatformSettings.from_env(env)
    registry, store = build_registry(settings), build_object_store(settings)
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 2
    register_champion(
        registry, TITANIC, LogisticRegression().fit(rng.integers(0, 7, (60, len(TITANIC_FEATURES))), labels)
    )
    register_champion(registry, SCONES, LogisticRegression(max_iter=50).fit(rng.integers(0, 256, (60, 3072)), labels))
    records = [dict(zip(PISTACHIO_FEATURES, row, strict=False)) for row in rng.random((60, len(PISTACHIO_FEATURES)))]
    register_champion(
        registry,
        PISTACHIO,
        build_pipeline(Config(1.0, 100, "lbfgs")).fit(records, labels),
        skops_trusted_types=TRUSTED_MODEL_TYPES,
    )
    publish_snapshot(store, "steam", steam_answers(), manifest={"format": SNAPSHOT_FORMAT})
    upload_and_deploy(
        store, build_model_bucket(settings, env), "paris_airbnb_price", skops_bytes(small_paris_pipeline())
    )
    with uvicorn_server(env, log_path=home / "uvicorn.log", startup_timeout=600) as base:
        for watcher in (
            f"ChampionWatcher:{TITANIC}",
            f"ChampionWatcher:{SCONES}",
            f"ChampionWatcher:{PISTACHIO}",
            "SnapshotWatcher:steam",
        ):
            wait_until_loaded(base, watcher, timeout=300)
        deadline = time.monotonic() + 300
        while (
            "/api/paris_airbnb_price/predict"
            not in json.loads(urllib.request.urlopen(f"{base}/openapi.json").read())["paths"]
        ):
            assert time.monotonic() < deadline, "the deployment was never served"
            time.sleep(0.2)
        yield base, home


def test_every_route_keeps_the_contract_its_schema_states(loaded_platform):
    base, home = loaded_platform
    started = time.monotonic()
    (home / "schemathesis.toml").write_text(CONFIG)
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "st"),
            "--config-file",
            str(home / "schemathesis.toml"),
            "run",
            f"{base}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "20261129",
            "--workers",
            "1",
            "--no-color",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
        ],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    print(f"schemathesis run: {time.monotonic() - started:.0f} s")
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-2000:]
    assert "0 failures" not in result.stdout and " passed" in result.stdout, result.stdout[-3000:]
