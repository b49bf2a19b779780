"""Scones Unlimited image workflow (group `scones`): SYSTEMS.md section 3, off SageMaker and Step Functions."""

import dagster as dg

from mlops_assets.scones import assets, checks, monitoring
from mlops_assets.scones.inference import inference_captures

defs = dg.Definitions(
    assets=[*dg.load_assets_from_modules([assets, monitoring]), inference_captures],
    asset_checks=[checks.labelled_images_counts, checks.labelled_images_decode],
)
