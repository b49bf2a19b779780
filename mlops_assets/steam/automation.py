"""Steam automation: one job refreshing the whole group and a daily schedule (stopped until an operator starts
it: a refresh re-reads the full files for several minutes)."""

import dagster as dg

from mlops_assets.steam.constants import SYSTEM

STEAM_JOB = "steam_refresh"

steam_refresh = dg.define_asset_job(
    # The group minus the hourly inference log the platform adds to every system (it has its own automation).
    STEAM_JOB,
    selection=dg.AssetSelection.groups(SYSTEM) - dg.AssetSelection.tag("mlops/record", "inference_log"),
    description="Re-ingest the Steam files, rebuild every answer table and recommender, publish a new snapshot.",
)

steam_daily = dg.ScheduleDefinition(
    job=steam_refresh, cron_schedule="0 4 * * *", default_status=dg.DefaultScheduleStatus.STOPPED
)

defs = dg.Definitions(jobs=[steam_refresh], schedules=[steam_daily])
