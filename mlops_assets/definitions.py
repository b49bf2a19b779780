"""The code location: composes the shared resources with every system's assets and automation.

Settings are read when the location loads (not at import), so one environment variable switches storage.
"""

from __future__ import annotations

import dagster as dg

from mlops_assets import deploy, pistachio, scones, steam, titanic
from mlops_assets.common import inference_log
from resources import build_resources
from resources.buckets import ensure_buckets
from resources.settings import PlatformSettings
from sensors import deploy as deploy_automation
from sensors import pistachio as pistachio_automation
from sensors import scones as scones_automation
from sensors import steam as steam_automation
from sensors import titanic as titanic_automation

SYSTEMS: list[dg.Definitions] = [
    titanic.defs, titanic_automation.defs,
    deploy.defs, deploy_automation.defs,
    scones.defs, scones_automation.defs,
    steam.defs, steam_automation.defs,
    pistachio.defs, pistachio_automation.defs,
    inference_log.defs,  # one hourly `inference_log` asset in each system's group
]


@dg.definitions
def defs() -> dg.Definitions:
    settings = PlatformSettings.from_env()
    # A missing bucket stops the location from loading, in one line, instead of every S3 step failing later.
    ensure_buckets(settings)
    platform = dg.Definitions(
        resources=build_resources(settings),
        # Steps share one process: ~4 s cheaper per step here, and one process per run keeps DuckDB single-writer.
        executor=dg.in_process_executor,
    )
    return dg.Definitions.merge(platform, *SYSTEMS)
