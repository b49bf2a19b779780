"""Deploy any scikit-learn Pipeline (group `deploy`): deployments as data → checked model version → serving."""

import dagster as dg

from mlops_assets.deploy.assets import ASSETS
from resources.model_bucket import model_bucket_from_settings

defs = dg.Definitions(
    assets=ASSETS,
    # Not in the shared resource builder: only this system uses the versioned bucket store.
    resources={"model_bucket": model_bucket_from_settings},
)
