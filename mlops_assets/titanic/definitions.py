"""The `titanic` system's Dagster definitions, built when the package's `defs` is first asked for."""

import dagster as dg

from mlops_assets.common.automation import with_policies
from mlops_assets.common.retrain import RetrainOnFailure
from mlops_assets.titanic import assets, automation, checks, monitoring, predictions

# A failed drift or realized-performance check retrains (sensors/retrain.py, when switched on).
RETRAIN = RetrainOnFailure(monitoring.CHECKS, "titanic_training")

defs = dg.Definitions.merge(
    dg.Definitions(
        assets=with_policies(
            dg.load_assets_from_modules([assets, predictions, monitoring]),
            automation=automation.AUTOMATION,
            freshness=automation.FRESHNESS,
        ),
        asset_checks=[checks.raw_passengers_valid, checks.feature_group_valid, assets.survival_model_gate],
    ),
    automation.defs,
)
