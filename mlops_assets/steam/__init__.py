"""Steam games system (group `steam`): full-scale ETL, the five query endpoints' answers, two recommenders."""

import dagster as dg

from mlops_assets.steam import assets, products

defs = dg.Definitions(assets=dg.load_assets_from_modules([assets, products]))
