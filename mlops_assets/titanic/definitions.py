"""The `titanic` system's Dagster definitions, built when the package's `defs` is first asked for."""

import dagster as dg

from mlops_assets.common.retrain import automation_sensor, retrain_sensor
from mlops_assets.titanic import assets, checks, monitoring, predictions

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([assets, predictions, monitoring]),
    asset_checks=[checks.raw_passengers_valid, checks.feature_group_valid],
    sensors=[retrain_sensor("titanic", monitoring.CHECKS, "titanic_training"),
             automation_sensor("titanic", [monitoring.input_drift, monitoring.realized_performance])],
)
