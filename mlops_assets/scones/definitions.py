"""The `scones` system's Dagster definitions, built when the package's `defs` is first asked for."""

import dagster as dg

from mlops_assets.common.retrain import automation_sensor, retrain_sensor
from mlops_assets.scones import assets, checks, drift, monitoring
from mlops_assets.scones.inference import inference_captures

defs = dg.Definitions(
    assets=[*dg.load_assets_from_modules([assets, monitoring, drift]), inference_captures],
    asset_checks=[checks.labelled_images_counts, checks.labelled_images_decode],
    sensors=[retrain_sensor("scones", drift.CHECKS, "scones_training"),
             automation_sensor("scones", [drift.input_drift])],
)
