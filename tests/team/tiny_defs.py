"""A small code location for instance tests: two assets, their job and a schedule (no platform state needed)."""

import os

import dagster as dg


@dg.asset(code_version="1")
def numbers() -> list[int]:
    return list(range(10))


@dg.asset(code_version="1")
def total(context: dg.AssetExecutionContext, numbers: list[int]) -> dg.MaterializeResult:
    # The pid shows which process ran the step (the CLI's, not the test's).
    return dg.MaterializeResult(metadata={"total": sum(numbers), "pid": os.getpid()})


tiny_job = dg.define_asset_job("tiny_job", selection=[numbers, total])
tiny_schedule = dg.ScheduleDefinition(name="tiny_schedule", job=tiny_job, cron_schedule="0 3 * * *")

defs = dg.Definitions(assets=[numbers, total], jobs=[tiny_job], schedules=[tiny_schedule])
