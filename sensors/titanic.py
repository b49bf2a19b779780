"""Titanic automation: the daily passenger and batch inference on a schedule, retraining when features change."""


import datetime as dt

import dagster as dg

from mlops_assets.titanic.constants import SYSTEM
from mlops_assets.titanic.partitions import daily_partitions


def key(name: str) -> dg.AssetKey:
    return dg.AssetKey([SYSTEM, name])


FEATURE_GROUP = key("feature_group")
SURVIVAL_MODEL = key("survival_model")
IMAGES = [key("latest_passenger_image"), key("actual_fate_image"), key("recent_predictions_image"),
          key("confusion_matrix_image")]

feature_backfill_job = dg.define_asset_job(
    "titanic_feature_backfill", selection=[key("raw_passengers"), key("passenger_features")],
    description="Load Kaggle's passengers and prepare their features (the original's one-off backfill).")

daily_job = dg.define_asset_job(
    "titanic_daily", partitions_def=daily_partitions,
    selection=[key("daily_passenger"), FEATURE_GROUP, key("batch_prediction"), key("prediction_history"), *IMAGES],
    description="Insert the day's synthetic passenger, predict its fate with the champion, redraw the dashboard.")

training_job = dg.define_asset_job(
    "titanic_training", selection=[key("training_split"), SURVIVAL_MODEL],
    description="Retrain on the current feature group; the promotion gate decides whether to serve the new model.")

daily_schedule = dg.build_schedule_from_partitioned_job(
    daily_job, hour_of_day=6, default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every morning: yesterday's passenger, its prediction and the dashboard pictures.")


def latest_materialization(instance: dg.DagsterInstance, asset_key: dg.AssetKey):
    records = instance.fetch_materializations(asset_key, limit=1).records
    return records[0] if records else None


@dg.sensor(job=training_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Retrain when the feature group has changed since the model was last trained.")
def feature_group_change_sensor(context: dg.SensorEvaluationContext):
    features = latest_materialization(context.instance, FEATURE_GROUP)
    if features is None:
        return dg.SkipReason("the feature group has not been materialized yet")
    handled = int(context.cursor) if context.cursor else None
    if handled is None:
        model = latest_materialization(context.instance, SURVIVAL_MODEL)
        # First evaluation: a model trained after the latest feature-group write is already up to date.
        if model is not None and model.storage_id > features.storage_id:
            context.update_cursor(str(features.storage_id))
            return dg.SkipReason("the model is newer than the feature group")
    elif features.storage_id <= handled:
        return dg.SkipReason("no feature-group change since the last retraining request")
    context.update_cursor(str(features.storage_id))
    return dg.RunRequest(run_key=f"feature_group:{features.storage_id}",
                         tags={"trigger": "feature_group_changed"})


defs = dg.Definitions(jobs=[feature_backfill_job, daily_job, training_job], schedules=[daily_schedule],
                      sensors=[feature_group_change_sensor])

BOOTSTRAP_DAYS = 7


def bootstrap(definitions: dg.Definitions, instance: dg.DagsterInstance, today: dt.date | None = None) -> None:
    """Give a new deployment a week of history: features, a champion, daily predictions and the dashboard."""
    today = today or dt.date.today()
    days = [(today - dt.timedelta(days=n)).isoformat() for n in range(BOOTSTRAP_DAYS, 0, -1)]
    daily = definitions.resolve_job_def(daily_job.name)

    def run(job: dg.JobDefinition, **kwargs) -> None:
        result = job.execute_in_process(instance=instance, raise_on_error=True, **kwargs)
        assert result.success

    run(definitions.resolve_job_def(feature_backfill_job.name))
    for day in days:
        run(daily, partition_key=day, asset_selection=[key("daily_passenger")])
    run(daily, partition_key=days[-1], asset_selection=[FEATURE_GROUP])
    run(definitions.resolve_job_def(training_job.name))
    for day in days[:-1]:
        run(daily, partition_key=day, asset_selection=[key("batch_prediction")])
    run(daily, partition_key=days[-1], asset_selection=[key("batch_prediction"), key("prediction_history"), *IMAGES])
