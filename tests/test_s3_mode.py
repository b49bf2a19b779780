"""The README's S3 mode end to end: the production bootstrap of all five systems against a real moto_server whose
bucket does not exist yet, MLflow artifacts included, then a real uvicorn process answering for every system."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx
import pandas as pd
import pytest

from mlops_assets.deploy.config import load_deployments
from tests.steam.conftest import EXTRACT, GAMES, REVIEWS, USERS, _game_line
from tests.support import REPO_ROOT, require_shared_data, standalone_environment, uvicorn_server, wait_for

pytestmark = [pytest.mark.s3, pytest.mark.realdata]

SYSTEMS = ["titanic", "deploy", "pistachio", "scones", "steam"]


def steam_files(folder: Path) -> None:
    """A small Steam folder in the real layout: the real one takes minutes, and S3 is what is under test here.

    Forty users, so that the bootstrap's 10 % sample of generated item lists still keeps a few."""
    folder.mkdir(parents=True)
    lines = [_game_line(game) for game in GAMES]
    (folder / "steam_games.json.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    reviews = "\n".join(repr(record) for record in REVIEWS) + "\n"
    (folder / "australian_user_reviews.json.gz").write_bytes(gzip.compress(reviews.encode()))
    extra = pd.DataFrame(
        {
            "user_id": [f"user{i}" for i in range(36)],
            "items_count": [1 + i % 5 for i in range(36)],
            "steam_id": [str(100 + i) for i in range(36)],
            "user_url": [f"u/{i}" for i in range(36)],
            "indice_ui": [float(4 + i) for i in range(36)],
        }
    )
    pd.concat([USERS, extra], ignore_index=True).to_parquet(folder / "users_items_users.parquet")
    EXTRACT.to_parquet(folder / "user_items_4Api.parquet")


def data_folder(real: Path, target: Path) -> Path:
    for name in ("titanic", "pistachio", "scones", "cifar100-subset"):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).symlink_to(real / name, target_is_directory=True)
    steam_files(target / "steam")
    return target


@pytest.fixture
def s3_platform(tmp_path, moto_endpoint):
    """Everything in S3 on moto_server (bucket absent), MLflow on SQLite with its default `s3://` artifact root."""
    data = data_folder(require_shared_data(), tmp_path / "data")
    bucket = f"s3-mode-{os.getpid()}"
    env = {
        **standalone_environment(tmp_path / "mlops", data),
        "MLOPS_OBJECT_STORE": "s3",
        "MLOPS_S3_BUCKET": bucket,
        "MLOPS_S3_ENDPOINT_URL": moto_endpoint,
        "MLOPS_MODEL_BUCKET": f"{bucket}-models",
        # Empty: MLflow would go to AWS unless the platform derives the endpoint itself.
        "MLFLOW_S3_ENDPOINT_URL": "",
        "MLOPS_MLFLOW_ARTIFACT_ROOT": "",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", tmp_path / "dagster_home" / "dagster.yaml")
    return env


def keys(s3, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def wait_until_all_loaded(base: str, expected: int) -> dict[str, bool]:
    """Every watcher of the API loaded (the five systems' models and snapshots), or a timeout naming the rest."""
    deadline = time.monotonic() + 180
    while True:
        loaded = httpx.get(f"{base}/health", timeout=10).json()["loaded"]
        if len(loaded) >= expected and all(loaded.values()):
            return loaded
        if time.monotonic() > deadline:
            raise TimeoutError(f"not loaded after 180 s: {[name for name, ok in loaded.items() if not ok]}")
        time.sleep(0.5)


def test_all_five_systems_bootstrap_and_serve_from_s3(s3_platform, moto_endpoint, tmp_path):
    env = s3_platform
    bucket, models_bucket = env["MLOPS_S3_BUCKET"], env["MLOPS_MODEL_BUCKET"]
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}

    # What `python3 dev.py up` runs after starting the servers, with the same environment.
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mlops_assets.bootstrap"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    log = done.stdout + done.stderr
    (tmp_path / "bootstrap.log").write_text(log)
    assert done.returncode == 0, log[-4000:]
    for system in SYSTEMS:
        assert f"[bootstrap] {system}: done in " in done.stdout, log[-4000:]
    print(f"bootstrap of the five systems in S3 mode: {time.monotonic() - started:.0f} s")

    # Objects, snapshots and MLflow artifacts are in the bucket; nothing fell back to the local folders.
    stored = keys(s3, bucket)
    for prefix in ("titanic/", "pistachio/", "scones/", "steam/", "deploy/", "serving/"):
        assert any(key.startswith(prefix) for key in stored), prefix
    for experiment in ("titanic", "Pistachio_Classifier", "scones"):
        assert any(key.startswith(f"mlflow-artifacts/{experiment}/") and key.endswith("/MLmodel") for key in stored), (
            experiment
        )
    home = Path(env["MLOPS_HOME"])
    assert not (home / "objects").exists() and not (home / "mlartifacts").exists() and not (home / "buckets").exists()
    assert s3.get_bucket_versioning(Bucket=models_bucket)["Status"] == "Enabled"
    assert {v["Key"] for v in s3.list_object_versions(Bucket=models_bucket)["Versions"]} == {
        "paris_airbnb_price.skops",
        "titanic_survival.skops",
    }

    # A real API process with the same environment loads every champion and snapshot from S3 and answers.
    with uvicorn_server(env, log_path=tmp_path / "uvicorn.log") as base:
        # Titanic, Scones and Pistachio champions, Steam's snapshot, the deployments' watcher.
        loaded = wait_until_all_loaded(base, expected=5)
        assert any(name.startswith("SnapshotWatcher:steam") for name in loaded), loaded
        wait_for(
            lambda: {d["name"]: d["served"] for d in httpx.get(f"{base}/api/deployments").json()}.get(
                "paris_airbnb_price"
            ),
            "the Paris deployment served from S3",
            timeout=180,
            interval=0.5,
        )

        titanic = httpx.post(
            f"{base}/titanic/predict",
            timeout=30,
            json={"age_band": "25-30", "port": "Cherbourg", "sex": "female", "fare_band": "50-75", "pclass": 1},
        )
        assert titanic.status_code == 200, titanic.text
        assert titanic.json()["fate"] in {"survived", "died"} and titanic.json()["lineage"]["model_version"]

        from serving.pistachio import EXAMPLE

        pistachio = httpx.post(f"{base}/classify", json=EXAMPLE, timeout=30)
        assert pistachio.status_code == 200, pistachio.text
        assert pistachio.json()["Type"] in {"Kirmizi_Pistachio", "Siirt_Pistachio"}

        image = next(iter(sorted((Path(env["MLOPS_DATA_DIR"]) / "scones" / "test").glob("*.png"))))
        scones = httpx.post(
            f"{base}/scones/classify",
            files={"file": (image.name, image.read_bytes(), "image/png")},
            params={"threshold": 0.0},
            timeout=30,
        )
        assert scones.status_code == 200, scones.text
        assert scones.json()["predicted_class"] in {"bicycle", "motorcycle"}

        steam = httpx.get(f"{base}/steam/sentiment_analysis/2015", timeout=30)
        assert steam.status_code == 200, steam.text
        assert sum(steam.json().values()) == 2  # Alice's and bob's 2015 reviews in the small folder

        example = load_deployments()["paris_airbnb_price"].raw_example
        accepted = httpx.post(f"{base}/api/paris_airbnb_price/predict", json=example, timeout=30)
        assert accepted.status_code in {200, 202}, accepted.text
        answer = {"status": "PENDING"}
        while answer["status"] == "PENDING":  # each long poll returns at the latest after `wait` seconds
            answer = httpx.get(
                f"{base}/api/predict/{accepted.json()['prediction_id']}", params={"wait": 5}, timeout=30
            ).json()
        assert answer["status"] == "COMPLETE" and answer["body"] > 0, answer
        pinned = s3.list_object_versions(Bucket=models_bucket, Prefix="paris_airbnb_price.skops")["Versions"]
        assert answer["model_version"] == pinned[0]["VersionId"]  # the model came from the S3 model bucket
