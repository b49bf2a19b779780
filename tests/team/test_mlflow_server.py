"""The team profile's MLflow: a real `mlflow server` on PostgreSQL with artifacts on S3 (moto_server), reached by
the assets and the API over HTTP only. Titanic is trained, registered and promoted through it, then served."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import httpx
import pytest

from devtools.team import mlflow_server_command
from mlops_assets.titanic.constants import MODEL_NAME
from resources.mlflow_registry import CHAMPION
from tests.support import (
    free_port,
    isolated_environment,
    platform_environment,
    require_shared_data,
    uvicorn_server,
    wait_for_http,
    wait_until_loaded,
)

pytestmark = [pytest.mark.s3, pytest.mark.realdata]


@contextlib.contextmanager
def mlflow_server(backend: str, artifacts: str, env: dict[str, str], log: Path):
    """`mlflow server` on 127.0.0.1 in a process group of its own (it starts uvicorn workers), stopped after."""
    port = free_port()
    command = mlflow_server_command(Path(sys.executable).parent, backend, artifacts, port)
    with open(log, "wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # Creating the schema in a fresh PostgreSQL database takes a while on a busy machine.
        wait_for_http(f"http://127.0.0.1:{port}/health", timeout=600, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_titanic_registers_promotes_and_serves_through_the_server(postgres, moto_endpoint, tmp_path):
    import psycopg2
    from mlflow.tracking import MlflowClient

    from tests.titanic.conftest import bootstrapped

    data = require_shared_data()
    database = "mlflow_tracking"
    postgres.create_database(database)
    bucket = f"mlflow-server-{os.getpid()}"
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=bucket)
    server_env = {
        **os.environ,
        "MLFLOW_S3_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    with mlflow_server(
        postgres.url(database), f"s3://{bucket}/mlflow-artifacts", server_env, tmp_path / "mlflow-server.log"
    ) as tracking:
        # The platform knows only the server's URL: no artifact root, no S3 endpoint or credentials for MLflow.
        env = {
            **platform_environment(tmp_path / "mlops", data),
            "MLFLOW_TRACKING_URI": tracking,
            "MLOPS_MLFLOW_ARTIFACT_ROOT": "",
            "MLFLOW_S3_ENDPOINT_URL": "",
            "AWS_ACCESS_KEY_ID": "none",
            "AWS_SECRET_ACCESS_KEY": "none",
        }
        with isolated_environment(env):
            _platform, instance_cm = bootstrapped(env, tmp_path / "dagster", days=2)
            instance_cm.__exit__(None, None, None)

            client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
            champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
            run = client.get_run(champion.run_id)
            assert run.info.artifact_uri.startswith("mlflow-artifacts:/titanic/")
            keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
            assert any(key.startswith("mlflow-artifacts/titanic/") and key.endswith("MLmodel") for key in keys), keys
            home = Path(env["MLOPS_HOME"])
            assert not (home / "mlflow.db").exists() and not (home / "mlartifacts").exists()

            with uvicorn_server(env, log_path=tmp_path / "uvicorn.log") as base:
                wait_until_loaded(base, f"ChampionWatcher:{MODEL_NAME}", timeout=180)
                answer = httpx.post(
                    f"{base}/titanic/predict",
                    timeout=30,
                    json={"age_band": "25-30", "port": "Cherbourg", "sex": "female", "fare_band": "50-75", "pclass": 1},
                )
                assert answer.status_code == 200, answer.text
                assert answer.json()["lineage"]["model_version"] == str(champion.version)

    # The registry really is the PostgreSQL database behind the server.
    with psycopg2.connect(host="127.0.0.1", port=postgres.port, user=postgres.user, dbname=database) as conn:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT version FROM registered_model_aliases WHERE name = %s AND alias = %s", (MODEL_NAME, CHAMPION)
            )
            assert cursor.fetchone() == (int(champion.version),)
