"""The `titanic` system's Dagster definitions, built when the package's `defs` is first asked for."""

import dagster as dg

from mlops_assets.titanic import assets, checks, predictions

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([assets, predictions]),
    asset_checks=[checks.raw_passengers_valid, checks.feature_group_valid, assets.survival_model_gate],
)
