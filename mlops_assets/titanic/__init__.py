"""Titanic feature-store system (group `titanic`): SYSTEMS.md section 1, with the original's defects fixed."""

import dagster as dg

from mlops_assets.titanic import assets, checks, predictions

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([assets, predictions]),
    asset_checks=[checks.raw_passengers_valid, checks.feature_group_valid],
)
