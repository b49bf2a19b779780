"""Deploy any scikit-learn Pipeline (group `deploy`): versioned model bucket → pinned, checked model → serving."""

import dagster as dg

from mlops_assets.deploy.assets import ASSETS
from mlops_assets.deploy.checks import CHECKS
from resources.model_bucket import model_bucket_from_settings

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    # Not in the shared resource builder: only this system uses the versioned bucket store.
    resources={"model_bucket": model_bucket_from_settings},
)
