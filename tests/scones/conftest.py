"""One real training of the scones group (temporary DuckDB, object store, MLflow, Dagster instance), shared by
the tests of this package: the champion it registers is what the workflow and serving tests classify with."""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from resources.settings import PlatformSettings
from tests.support import (
    isolated_environment,
    platform_environment,
    require_shared_data,
    uvicorn_server,
    wait_until_loaded,
)


@dataclass
class SconesPlatform:
    env: dict[str, str]
    settings: PlatformSettings
    instance: dg.DagsterInstance
    definitions: dg.Definitions
    data: Path

    def metadata(self, *key: str) -> dict:
        event = self.instance.get_latest_materialization_event(dg.AssetKey(["scones", *key]))
        return {name: value.value for name, value in event.asset_materialization.metadata.items()}

    def check(self, asset: str, name: str):
        """The latest evaluation (AssetCheckEvaluation) of a check, or None."""
        records = self.instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey(["scones", asset]), name), limit=1
        )
        return records[0].event.dagster_event.event_specific_data if records else None


@pytest.fixture(scope="package")
def scones_platform(tmp_path_factory):
    data = require_shared_data()
    home = tmp_path_factory.mktemp("scones")
    env = platform_environment(home / "mlops", data)
    with isolated_environment(env):
        from mlops_assets.definitions import defs
        from mlops_assets.scones.bootstrap import bootstrap

        definitions = defs()
        (home / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
            bootstrap(definitions, instance)
            yield SconesPlatform(env, PlatformSettings.from_env(), instance, definitions, data)


@pytest.fixture(scope="package")
def scones_server(scones_platform):
    """A real uvicorn process serving the trained champion (POST /scones/classify), for this package's tests."""
    with uvicorn_server(scones_platform.env) as base:
        # The champion loads in the background after start-up: wait until the server reports it loaded.
        wait_until_loaded(base, "ChampionWatcher:scones_classifier")
        yield base
