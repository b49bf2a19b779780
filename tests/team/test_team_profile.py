"""The team profile end to end, as `python3 dev.py up --profile team` starts it: Titanic and Pistachio
materialized with every step in a Celery worker process, their tables as Delta on S3, models registered and
promoted through the MLflow tracking server (PostgreSQL, artifacts on S3), and both API processes answering with
the promoted champions.

On the same platform (started once for this module, stopped after it), a Celery worker's process killed with
SIGKILL in the middle of a step (an OOM kill, a lost host): the run fails cleanly instead of waiting forever for
the step's result, the pool slot its step held is freed, and the platform's automatic retry of the run succeeds
on the workers that are left."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import boto3
import httpx
import pytest

from tests.support import isolated_environment, wait_for, wait_until_loaded
from tests.team.conftest import TEAM_SYSTEMS
from tests.team.launcher import celery_processes, processes_of

pytestmark = [pytest.mark.s3, pytest.mark.realdata]

DAEMON_TAGS = {"dagster/sensor_name", "dagster/schedule_name", "dagster/parent_run_id", "dagster/root_run_id"}


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_steps_run_on_celery_workers_models_go_through_mlflow_and_two_apis_answer(team_platform):
    import dagster as dg
    from mlflow.tracking import MlflowClient

    from mlops_assets.pistachio.constants import MODEL_NAME as PISTACHIO
    from mlops_assets.titanic.constants import MODEL_NAME as TITANIC
    from resources.mlflow_registry import CHAMPION
    from serving.pistachio import EXAMPLE

    running = processes_of(team_platform.home)
    celery = set(celery_processes(team_platform.home))
    apis = [pid for pid, command in running.items() if "uvicorn serving.app:create_app" in command]
    assert len(apis) == 2, running

    with isolated_environment(team_platform.env), team_platform.instance() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        # The bootstrap's runs (the daemon's sensors and retries start others meanwhile, on the same workers).
        runs = [run for run in instance.get_runs() if not set(run.tags) & DAEMON_TAGS]
        assert {run.job_name.split("_")[0] for run in runs} == set(TEAM_SYSTEMS)
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs), [(r.job_name, r.status) for r in runs]
        step_pids, run_pids, hosts = set(), set(), set()
        for run in runs:
            for entry in instance.all_logs(run.run_id):
                event = entry.dagster_event
                if event is None:
                    continue
                if event.event_type == dg.DagsterEventType.RUN_START:
                    run_pids.add(event.pid)
                elif event.event_type == dg.DagsterEventType.STEP_START:
                    step_pids.add(event.pid)
                elif event.event_type == dg.DagsterEventType.ENGINE_EVENT and "Celery worker" in (
                    event.event_specific_data.metadata or {}
                ):
                    hosts.add(event.event_specific_data.metadata["Celery worker"].value)
    # Every step started in a process of a Celery worker, never in the process that ran the run.
    assert step_pids and step_pids <= celery, (step_pids, celery)
    assert not step_pids & run_pids
    # Both workers took steps (names as the launcher gives them).
    assert {host.split("@")[0] for host in hosts} == {"worker1", "worker2"}, hosts
    # The workers got the team profile's settings from the launcher.
    # (From the CLI's process: Celery's renamed processes no longer show their environment.)
    worker_env = environ_of(next(pid for pid, command in running.items() if "dagster-celery worker start" in command))
    assert worker_env["MLOPS_EXECUTOR"] == "celery" and worker_env["MLOPS_TABLE_FORMAT"] == "delta"
    assert worker_env["MLOPS_OBJECT_STORE"] == "s3" and worker_env["MLFLOW_TRACKING_URI"] == team_platform.mlflow

    client = MlflowClient(tracking_uri=team_platform.mlflow, registry_uri=team_platform.mlflow)
    champions = {name: client.get_model_version_by_alias(name, CHAMPION) for name in (TITANIC, PISTACHIO)}
    for version in champions.values():
        assert client.get_run(version.run_id).info.artifact_uri.startswith("mlflow-artifacts:/")
    env = team_platform.env
    s3 = boto3.client(
        "s3",
        endpoint_url=env["MLOPS_S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=env["MLOPS_S3_BUCKET"], Prefix="mlflow-artifacts/")["Contents"]]
    assert sum(key.endswith("MLmodel") for key in keys) >= 2, keys
    assert not (team_platform.home / "mlflow.db").exists() and not (team_platform.home / "mlartifacts").exists()
    # Tables: Delta logs in the bucket, one folder (schema) per system, and no DuckDB file on the machine.
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=env["MLOPS_S3_BUCKET"], Prefix="tables/")
    delta = {o["Key"].split("/")[1] for page in pages for o in page.get("Contents", []) if "/_delta_log/" in o["Key"]}
    assert delta >= set(TEAM_SYSTEMS), delta
    assert not list(team_platform.home.rglob("*.duckdb"))

    for base in team_platform.apis:
        wait_until_loaded(base, f"ChampionWatcher:{TITANIC}", timeout=180)
        wait_until_loaded(base, f"ChampionWatcher:{PISTACHIO}", timeout=180)
        titanic = httpx.post(
            f"{base}/titanic/predict",
            timeout=30,
            json={"age_band": "25-30", "port": "Cherbourg", "sex": "female", "fare_band": "50-75", "pclass": 1},
        )
        assert titanic.status_code == 200, titanic.text
        assert titanic.json()["lineage"]["model_version"] == str(champions[TITANIC].version)
        pistachio = httpx.post(f"{base}/classify", json=EXAMPLE, timeout=30)
        assert pistachio.status_code == 200, pistachio.text
        assert pistachio.json()["lineage"]["model_version"] == str(champions[PISTACHIO].version)


SWEEP_STEP = "pistachio__model_sweep"  # 96 configurations: long enough to be killed midway, in the warehouse pool
SWEEP_POOL = "duckdb_warehouse"


def test_a_worker_killed_mid_step_fails_the_run_cleanly_and_the_retry_succeeds(team_platform):
    import dagster as dg
    from dagster_graphql import DagsterGraphQLClient

    from mlops_assets.pistachio.automation import TRAINING_JOB

    host, port = team_platform.ui.removeprefix("http://").split(":")
    client = DagsterGraphQLClient(host, port_number=int(port))
    with isolated_environment(team_platform.env), team_platform.instance() as instance:
        week = sorted(instance.get_dynamic_partitions("pistachio_snapshots"))[-1]
        # Through the webserver: the daemon dequeues it and its run worker sends the steps to Celery.
        run_id = client.submit_job_execution(
            TRAINING_JOB,
            repository_location_name="mlops_platform",
            repository_name="__repository__",
            tags={"dagster/partition": week},
        )

        def sweep_started():
            starts = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
            return next((e.dagster_event.pid for e in starts if e.step_key == SWEEP_STEP), None)

        pid = wait_for(sweep_started, f"{SWEEP_STEP} started in a Celery worker", timeout=600, interval=0.2)
        assert "ForkPoolWorker" in celery_processes(team_platform.home)[pid]  # a worker's pool child
        os.kill(pid, signal.SIGKILL)

        def finished(run):
            record = instance.get_run_by_id(run)
            return record if record and record.is_finished else None

        failed = wait_for(lambda: finished(run_id), "the run to end after the kill", timeout=300, interval=1)
        assert failed.status == dg.DagsterRunStatus.FAILURE
        failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert failure and "WorkerLostError" in str(failure[-1].dagster_event.event_specific_data.error), failure
        succeeded = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
        assert SWEEP_STEP not in {e.step_key for e in succeeded}

        # dagster.team.yaml retries a failed run once; the sweep's pool slot, never freed by the killed process,
        # is freed by run monitoring, so the retry is not stuck waiting for it.
        def retry():
            runs = instance.get_runs(dg.RunsFilter(tags={"dagster/parent_run_id": run_id}))
            return runs[0].run_id if runs else None

        retry_id = wait_for(retry, "the automatic retry of the run", timeout=300, interval=1)
        retried = wait_for(lambda: finished(retry_id), "the retry to finish", timeout=900, interval=1)
        assert retried.status == dg.DagsterRunStatus.SUCCESS
        sweep = instance.all_logs(retry_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
        assert SWEEP_STEP in {e.step_key for e in sweep}
        assert run_id not in instance.event_log_storage.get_concurrency_info(SWEEP_POOL).active_run_ids
    # Both workers are still there (Celery replaced the killed pool process).
    children = [c for c in celery_processes(team_platform.home).values() if "ForkPoolWorker" in c]
    assert len(children) == 2 and pid not in celery_processes(team_platform.home), children
