"""The `steam` system's Dagster definitions, built when the package's `defs` is first asked for."""

import dagster as dg

from mlops_assets.steam import assets, automation, products

defs = dg.Definitions.merge(dg.Definitions(assets=dg.load_assets_from_modules([assets, products])), automation.defs)
