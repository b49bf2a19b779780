"""Buckets at start-up: created when missing and allowed (moto_server), refused in one line when not."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import boto3
import pytest

from resources.buckets import BucketUnavailable, ensure_buckets, required_buckets
from resources.settings import PlatformSettings
from tests.support import REPO_ROOT, free_port, stop_process

pytestmark = pytest.mark.s3


def s3_settings(home, endpoint: str, bucket: str, **extra: str) -> tuple[PlatformSettings, dict[str, str]]:
    env = {
        "MLOPS_HOME": str(home),
        "MLOPS_OBJECT_STORE": "s3",
        "MLOPS_S3_BUCKET": bucket,
        "MLOPS_S3_ENDPOINT_URL": endpoint,
        "MLOPS_MODEL_BUCKET": f"{bucket}-models",
        **extra,
    }
    return PlatformSettings.from_env(env), env


def test_required_buckets_follow_the_settings(tmp_path):
    local = PlatformSettings.from_env({"MLOPS_HOME": str(tmp_path)})
    assert required_buckets(local, {}) == []
    settings, env = s3_settings(tmp_path, "http://127.0.0.1:1", "objects")
    found = {b.name: b for b in required_buckets(settings, env)}
    assert set(found) == {"objects", "objects-models"}
    assert found["objects"].purposes == ("object store", "MLflow artifacts")  # the default artifact root
    assert found["objects-models"].versioned and not found["objects"].versioned
    only_artifacts = PlatformSettings.from_env(
        {
            "MLOPS_HOME": str(tmp_path),
            "MLOPS_MLFLOW_ARTIFACT_ROOT": "s3://runs/mlflow",
            "MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:2",
        }
    )
    (bucket,) = required_buckets(only_artifacts, {})
    assert (bucket.name, bucket.endpoint_url, bucket.purposes) == ("runs", "http://127.0.0.1:2", ("MLflow artifacts",))


def test_missing_buckets_are_created_and_the_model_bucket_versioned(tmp_path, moto_endpoint, monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    settings, env = s3_settings(tmp_path, moto_endpoint, f"fresh-{os.getpid()}")
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    before = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert settings.s3_bucket not in before

    assert sorted(ensure_buckets(settings, env)) == [settings.s3_bucket, f"{settings.s3_bucket}-models"]
    after = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {settings.s3_bucket, f"{settings.s3_bucket}-models"} <= after
    assert s3.get_bucket_versioning(Bucket=f"{settings.s3_bucket}-models").get("Status") == "Enabled"
    assert s3.get_bucket_versioning(Bucket=settings.s3_bucket).get("Status") is None
    assert ensure_buckets(settings, env) == []  # the second start finds them


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s") from None
            time.sleep(0.1)


@pytest.fixture
def read_only_s3(tmp_path):
    """A moto_server that enforces IAM, and credentials of a user allowed to look at buckets but not create them."""
    port = free_port()
    # The first three requests (the user, its policy and its key) run without authentication; every later one
    # needs valid credentials and a policy allowing it. So readiness is a TCP connect, which is no request.
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, process)
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="reader")
        # AWS authorizes HeadBucket as s3:ListBucket; moto checks an action named after the call.
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Resource": "*",
                    "Action": ["s3:ListBucket", "s3:HeadBucket", "s3:GetBucketVersioning"],
                }
            ],
        }
        iam.put_user_policy(UserName="reader", PolicyName="read-only", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        yield (
            endpoint,
            {
                "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
                "AWS_DEFAULT_REGION": "us-east-1",
            },
        )
    finally:
        stop_process(process)


def test_a_bucket_the_endpoint_will_not_create_stops_every_start_in_one_line(tmp_path, read_only_s3, monkeypatch):
    endpoint, credentials = read_only_s3
    _settings, env = s3_settings(tmp_path / "mlops", endpoint, "team-bucket")
    env = {
        **env,
        **credentials,
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "MLOPS_OFFLINE": "1",
        "GIT_PYTHON_REFRESH": "quiet",
    }
    (tmp_path / "dagster").mkdir()
    expected = (
        f"S3 bucket 'team-bucket' (object store, MLflow artifacts) at {endpoint} does not exist and could "
        f"not be created: AccessDenied"
    )

    # The bootstrap (what `dev.py up` runs): one line, no traceback, a non-zero exit.
    done = subprocess.run(
        [sys.executable, "-m", "mlops_assets.bootstrap"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert expected in done.stdout and "Traceback" not in done.stdout + done.stderr
    assert [line for line in done.stdout.splitlines() if "[bootstrap]" in line] == [
        line for line in done.stdout.splitlines() if expected in line
    ]

    # The code location and the serving API refuse to start with the same sentence.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from mlops_assets.definitions import defs
    from serving.app import create_app

    for start in (defs, create_app):
        with pytest.raises(BucketUnavailable) as refused:
            start()
        assert str(refused.value).startswith(expected) and "\n" not in str(refused.value)


def test_an_unreachable_endpoint_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings, env = s3_settings(tmp_path, endpoint, "nowhere")
    with pytest.raises(BucketUnavailable, match=rf"S3 bucket 'nowhere' .* at {endpoint} cannot be reached"):
        ensure_buckets(settings, env)
