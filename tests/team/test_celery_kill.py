"""A Celery worker's process killed with SIGKILL in the middle of a step (an OOM kill, a lost host): the run fails
cleanly instead of waiting forever for the step's result, the pool slot its step held is freed, and the
platform's automatic retry of the run succeeds on the workers that are left."""

from __future__ import annotations

import os
import signal

import pytest

from tests.support import isolated_environment, wait_for
from tests.team.launcher import celery_processes

pytestmark = [pytest.mark.s3, pytest.mark.realdata]

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
