"""Steam automation: one job refreshing the whole group, a daily schedule, and the first-run bootstrap."""

import dagster as dg

STEAM_JOB = "steam_refresh"
# The bootstrap generates a tenth of the users' items (when the real file is absent): the full 5.15 M rows take
# several minutes to generate and parse on a small machine; `steam_refresh` with the default config does them all.
BOOTSTRAP_GENERATOR_SCALE = 0.1

steam_refresh = dg.define_asset_job(
    STEAM_JOB, selection=dg.AssetSelection.groups("steam"),
    description="Re-ingest the Steam files, rebuild every answer table and recommender, publish a new snapshot.")

steam_daily = dg.ScheduleDefinition(job=steam_refresh, cron_schedule="0 4 * * *",
                                    default_status=dg.DefaultScheduleStatus.STOPPED)


def bootstrap_run_config(scale: float = BOOTSTRAP_GENERATOR_SCALE) -> dict:
    return {"ops": {"steam__raw_user_items": {"config": {"generator_scale": scale}}}}


def bootstrap(defs: dg.Definitions, instance: dg.DagsterInstance,
              generator_scale: float = BOOTSTRAP_GENERATOR_SCALE) -> None:
    """Materialize the whole steam group once so a new user's UI and API have answers to show."""
    result = defs.resolve_job_def(STEAM_JOB).execute_in_process(
        instance=instance, run_config=bootstrap_run_config(generator_scale), raise_on_error=False)
    if not result.success:
        raise RuntimeError(f"steam bootstrap run {result.run_id} failed; see it in the Dagster UI")


defs = dg.Definitions(jobs=[steam_refresh], schedules=[steam_daily])
