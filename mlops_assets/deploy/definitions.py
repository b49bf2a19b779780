"""The `deploy` system's Dagster definitions, built when the package's `defs` is first asked for."""

import dagster as dg

from mlops_assets.deploy import automation
from mlops_assets.deploy.assets import ASSETS
from mlops_assets.deploy.monitoring import realized_performance
from resources.model_bucket import model_bucket_from_settings

defs = dg.Definitions.merge(
    dg.Definitions(
        assets=[*ASSETS, realized_performance],
        # Not in the shared resource builder: only this system uses the versioned bucket store.
        resources={"model_bucket": model_bucket_from_settings},
    ),
    automation.defs,
)
