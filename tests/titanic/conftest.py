"""One materialization of the whole Titanic group (temporary DuckDB, object store, MLflow, Dagster instance),
shared by the tests of this package."""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from resources.settings import PlatformSettings
from tests.support import isolated_environment, platform_environment, require_shared_data

TODAY = dt.date(2026, 3, 10)
BOOTSTRAP_DAYS = ["2026-03-07", "2026-03-08", "2026-03-09"]


@dataclass
class TitanicPlatform:
    env: dict[str, str]
    settings: PlatformSettings
    instance: dg.DagsterInstance
    definitions: dg.Definitions

    def job(self, name: str) -> dg.JobDefinition:
        return self.definitions.resolve_job_def(name)


def bootstrapped(env: dict[str, str], instance_dir: Path, days: int = 3):
    """Materialize the group with the production bootstrap, for `days` days ending the day before TODAY."""
    from mlops_assets.definitions import defs
    from mlops_assets.titanic import bootstrap as titanic

    definitions = defs()
    instance_dir.mkdir(parents=True, exist_ok=True)
    instance_cm = dg.instance_for_test(temp_dir=str(instance_dir))
    instance = instance_cm.__enter__()
    titanic.BOOTSTRAP_DAYS, saved = days, titanic.BOOTSTRAP_DAYS
    try:
        titanic.bootstrap(definitions, instance, today=TODAY)
    finally:
        titanic.BOOTSTRAP_DAYS = saved
    return TitanicPlatform(env, PlatformSettings.from_env(), instance, definitions), instance_cm


@pytest.fixture(scope="package")
def titanic_platform(tmp_path_factory):
    data = require_shared_data()
    home = tmp_path_factory.mktemp("titanic")
    env = platform_environment(home / "mlops", data)
    with isolated_environment(env):
        platform, instance_cm = bootstrapped(env, home / "dagster")
        try:
            yield platform
        finally:
            instance_cm.__exit__(None, None, None)
