"""The `scones` system's Dagster definitions, built when the package's `defs` is first asked for."""

import dagster as dg

from mlops_assets.common.automation import with_policies
from mlops_assets.common.retrain import RetrainOnFailure
from mlops_assets.scones import assets, automation, checks, drift, monitoring
from mlops_assets.scones.inference import inference_captures

# A failed drift check retrains (sensors/retrain.py, when switched on).
RETRAIN = RetrainOnFailure(drift.CHECKS, "scones_training")

defs = dg.Definitions.merge(
    dg.Definitions(
        assets=with_policies(
            [*dg.load_assets_from_modules([assets, monitoring, drift]), inference_captures],
            freshness=automation.FRESHNESS,
        ),
        asset_checks=[checks.labelled_images_counts, checks.labelled_images_decode, assets.image_classifier_gate],
    ),
    automation.defs,
)
