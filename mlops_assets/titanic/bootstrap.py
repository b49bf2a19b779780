"""Titanic's first materialization: a week of history, so a new deployment's predictor and dashboard are live."""

import datetime as dt

import dagster as dg

from mlops_assets.common.keys import key
from mlops_assets.common.runs import execute
from mlops_assets.titanic.automation import FEATURE_GROUP, IMAGES, daily_job, feature_backfill_job, training_job
from mlops_assets.titanic.constants import SYSTEM

# Titanic first: its group is the one a new user opens first, browsable within about a minute.
ORDER = 0
BOOTSTRAP_DAYS = 7


def bootstrap(definitions: dg.Definitions, instance: dg.DagsterInstance, today: dt.date | None = None) -> None:
    """Give a new deployment a week of history: features, a champion, daily predictions and the dashboard."""
    today = today or dt.date.today()
    days = [(today - dt.timedelta(days=n)).isoformat() for n in range(BOOTSTRAP_DAYS, 0, -1)]
    daily = definitions.resolve_job_def(daily_job.name)

    def run(job: dg.JobDefinition, **kwargs) -> None:
        result = execute(job, instance, raise_on_error=True, **kwargs)
        assert result.success

    run(definitions.resolve_job_def(feature_backfill_job.name))
    for day in days:
        run(daily, partition_key=day, asset_selection=[key(SYSTEM, "daily_passenger")])
    run(daily, partition_key=days[-1], asset_selection=[FEATURE_GROUP])
    run(definitions.resolve_job_def(training_job.name))
    for day in days[:-1]:
        run(daily, partition_key=day, asset_selection=[key(SYSTEM, "batch_prediction")])
    run(
        daily,
        partition_key=days[-1],
        asset_selection=[key(SYSTEM, "batch_prediction"), key(SYSTEM, "prediction_history"), *IMAGES],
    )
