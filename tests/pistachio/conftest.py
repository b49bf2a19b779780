"""One small Pistachio deployment for the whole package: the real data, a 3-configuration grid, a temporary everything."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import pytest

from mlops_assets import pistachio
from mlops_assets.pistachio import bootstrap as pistachio_bootstrap
from mlops_assets.pistachio.sweep import Config
from resources import build_resources
from resources.settings import PlatformSettings
from tests.support import isolated_environment, platform_environment, require_shared_data

# Three configurations keep a weekly run to seconds; the 96-run grid is timed by scripts/bench_pistachio.py.
SMALL_GRID = [Config(1.0, 100, "liblinear"), Config(1.0, 500, "lbfgs"), Config(2.0, 20, "sag")]


@dataclass
class Deployment:
    env: dict[str, str]
    settings: PlatformSettings
    defs: dg.Definitions
    instance: dg.DagsterInstance

    def resource(self, key: str):
        return self.defs.resources[key]


def make_definitions(settings: PlatformSettings) -> dg.Definitions:
    platform = dg.Definitions(resources=build_resources(settings), executor=dg.in_process_executor)
    return dg.Definitions.merge(platform, pistachio.defs)


@pytest.fixture(scope="package")
def bootstrapped(tmp_path_factory) -> Deployment:
    """The README's first command for this system (bootstrap), on the real data with SMALL_GRID."""
    env = platform_environment(tmp_path_factory.mktemp("pistachio"), require_shared_data())
    with isolated_environment(env), pytest.MonkeyPatch.context() as patch:
        patch.setattr("mlops_assets.pistachio.assets.full_grid", lambda: list(SMALL_GRID))
        settings = PlatformSettings.from_env()
        defs = make_definitions(settings)
        with dg.instance_for_test() as instance:
            pistachio_bootstrap.bootstrap(defs, instance)
            yield Deployment(env, settings, defs, instance)
