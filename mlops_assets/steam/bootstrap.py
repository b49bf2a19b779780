"""Steam's first materialization: the whole group once, so a new user's UI and API have answers to show."""

import dagster as dg

from mlops_assets.common.runs import execute
from mlops_assets.steam.automation import STEAM_JOB

# The bootstrap generates a tenth of the users' items (when the real file is absent): the full 5.15 M rows take
# several minutes to generate and parse on a small machine; `steam_refresh` with the default config does them all.
BOOTSTRAP_GENERATOR_SCALE = 0.1


def bootstrap_run_config(scale: float = BOOTSTRAP_GENERATOR_SCALE) -> dict:
    return {"ops": {"steam__raw_user_items": {"config": {"generator_scale": scale}}}}


def bootstrap(
    defs: dg.Definitions, instance: dg.DagsterInstance, generator_scale: float = BOOTSTRAP_GENERATOR_SCALE
) -> None:
    """Materialize the whole steam group once so a new user's UI and API have answers to show."""
    result = execute(
        defs.resolve_job_def(STEAM_JOB),
        instance,
        run_config=bootstrap_run_config(generator_scale),
        raise_on_error=False,
    )
    if not result.success:
        raise RuntimeError(f"steam bootstrap run {result.run_id} failed; see it in the Dagster UI")
