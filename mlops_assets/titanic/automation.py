"""Titanic automation: the daily passenger and batch inference on a schedule, retraining when features change.

Retraining is declarative: `training_split` and `survival_model` are eager, so Dagster materializes them (in one
run) whenever the feature group has been updated, and never while it is missing or being written. The assets the
daily schedule refreshes carry a freshness policy that the schedule's hour defines.
"""

import datetime as dt

import dagster as dg

from mlops_assets.common.keys import key
from mlops_assets.titanic.constants import SYSTEM

FEATURE_GROUP = key(SYSTEM, "feature_group")
SURVIVAL_MODEL = key(SYSTEM, "survival_model")
IMAGES = [
    key(SYSTEM, "latest_passenger_image"),
    key(SYSTEM, "actual_fate_image"),
    key(SYSTEM, "recent_predictions_image"),
    key(SYSTEM, "confusion_matrix_image"),
]

feature_backfill_job = dg.define_asset_job(
    "titanic_feature_backfill",
    selection=[key(SYSTEM, "raw_passengers"), key(SYSTEM, "passenger_features")],
    description="Load Kaggle's passengers and prepare their features (the original's one-off backfill).",
)

daily_job = dg.define_asset_job(
    "titanic_daily",
    selection=[
        key(SYSTEM, "daily_passenger"),
        FEATURE_GROUP,
        key(SYSTEM, "batch_prediction"),
        key(SYSTEM, "prediction_history"),
        *IMAGES,
    ],
    description="Insert the day's synthetic passenger, predict its fate with the champion, redraw the dashboard.",
)

training_job = dg.define_asset_job(
    "titanic_training",
    selection=[key(SYSTEM, "training_split"), SURVIVAL_MODEL],
    description="Retrain on the current feature group; the promotion gate decides whether to serve the new model.",
)

DAILY_HOUR = 6
daily_schedule = dg.build_schedule_from_partitioned_job(
    daily_job,
    hour_of_day=DAILY_HOUR,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every morning: yesterday's passenger, its prediction and the dashboard pictures.",
)

# Retrain when the features change: what the original's retraining did by hand, and what a sensor did before.
AUTOMATION = {
    key(SYSTEM, "training_split"): dg.AutomationCondition.eager(),
    SURVIVAL_MODEL: dg.AutomationCondition.eager(),
}

# The schedule starts at 06:00 UTC and the run takes minutes: an asset not written between 06:00 and 07:00 (or
# since) missed its day. The two pictures drawn only when there is something to draw have no such promise.
DAILY_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron=f"0 {DAILY_HOUR + 1} * * *", lower_bound_delta=dt.timedelta(hours=1)
)
FRESHNESS = {
    asset: DAILY_FRESHNESS
    for asset in [
        key(SYSTEM, "daily_passenger"),
        FEATURE_GROUP,
        key(SYSTEM, "batch_prediction"),
        key(SYSTEM, "prediction_history"),
        key(SYSTEM, "latest_passenger_image"),
        key(SYSTEM, "recent_predictions_image"),
    ]
}

defs = dg.Definitions(jobs=[feature_backfill_job, daily_job, training_job], schedules=[daily_schedule])
