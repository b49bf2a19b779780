"""The shared promotion gate against a registry it cannot read: no champion is inferred, nothing is promoted."""

import dagster as dg
import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from sklearn.dummy import DummyClassifier

from mlops_assets.common.champion import ChampionLoader
from mlops_assets.common.promotion import promotion_gate
from resources import build_registry
from resources.mlflow_registry import CHALLENGER, CHAMPION, MlflowRegistry
from resources.settings import PlatformSettings
from tests.support import free_port


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    home = tmp_path_factory.mktemp("mlflow")
    return build_registry(PlatformSettings.from_env({"MLOPS_HOME": str(home)}))


@pytest.fixture
def unreachable(monkeypatch, tmp_path):
    # Nothing listens on a port just handed out and released; MLflow's retries would only make the test slow.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://127.0.0.1:{free_port()}"
    return MlflowRegistry(tracking_uri=uri, artifact_root=str(tmp_path))


def new_version(registry, name, constant=1):
    with registry.start_run("gate-test") as run:
        info = registry.log_sklearn_model(
            DummyClassifier(strategy="constant", constant=constant).fit(np.zeros((2, 1)), [0, 1])
        )
    return str(registry.register(name, info.model_uri, run.info.run_id).version)


def test_missing_model_and_missing_alias_mean_no_champion(registry):
    assert registry.version_by_alias("never_registered", CHAMPION) is None
    version = new_version(registry, "no_alias_yet")  # the model exists, the alias does not
    assert registry.version_by_alias("no_alias_yet", CHAMPION) is None
    registry.set_alias("no_alias_yet", CHAMPION, version)
    assert str(registry.version_by_alias("no_alias_yet", CHAMPION).version) == version


def test_an_unreachable_registry_is_an_error_not_a_missing_champion(unreachable):
    with pytest.raises(MlflowException):
        unreachable.version_by_alias("titanic_modal", CHAMPION)
    with pytest.raises(MlflowException):
        ChampionLoader("titanic_modal").get(unreachable)


def test_the_gate_fails_with_error_and_promotes_nothing_when_the_registry_is_down(unreachable):
    result = promotion_gate(
        dg.build_asset_context(), unreachable, "titanic_modal", "accuracy", "7", 0.9, lambda champion: 0.5
    )
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["decision"].value == "none"
    assert "127.0.0.1" in result.metadata["reason"].value


def test_a_champion_that_cannot_be_scored_moves_no_alias(registry):
    name = "unscorable_champion"
    champion = new_version(registry, name)
    registry.set_alias(name, CHAMPION, champion)
    candidate = new_version(registry, name)

    def broken_scorer(version):
        raise OSError(f"artifacts of v{version.version} unreadable")

    result = promotion_gate(dg.build_asset_context(), registry, name, "accuracy", candidate, 0.99, broken_scorer)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert "unreadable" in result.description
    assert str(registry.version_by_alias(name, CHAMPION).version) == champion
    assert registry.version_by_alias(name, CHALLENGER) is None
    assert "promotion.decision" not in registry.client().get_model_version(name, candidate).tags


def test_a_lost_comparison_warns_and_a_win_passes(registry):
    name = "gate_rule"
    champion = new_version(registry, name)
    registry.set_alias(name, CHAMPION, champion)
    worse = new_version(registry, name)
    lost = promotion_gate(dg.build_asset_context(), registry, name, "accuracy", worse, 0.6, lambda v: 0.8)
    assert not lost.passed and lost.severity == dg.AssetCheckSeverity.WARN
    assert str(registry.version_by_alias(name, CHALLENGER).version) == worse
    better = new_version(registry, name)
    won = promotion_gate(dg.build_asset_context(), registry, name, "accuracy", better, 0.9, lambda v: 0.8)
    assert won.passed and str(registry.version_by_alias(name, CHAMPION).version) == better
    assert won.metadata["champion_accuracy"].value == 0.8


def test_the_champion_loader_loads_each_version_once(registry):
    name = "loader_demo"
    first = new_version(registry, name, constant=0)
    loads = []
    loader = ChampionLoader(name, load=lambda uri: loads.append(uri) or registry.load_sklearn(uri))
    assert loader.get(registry) is None  # no champion yet
    registry.set_alias(name, CHAMPION, first)
    held = loader.get(registry)
    assert held.number == first and loader.get(registry) is held
    second = new_version(registry, name, constant=1)
    registry.set_alias(name, CHAMPION, second)
    assert loader.get(registry).number == second and loader.current.model.predict(np.zeros((1, 1)))[0] == 1
    assert loads == [f"models:/{name}/{first}", f"models:/{name}/{second}"]


def test_the_gate_rerun_on_the_serving_champion_keeps_it_and_its_decision(registry):
    # A skipped training re-emits the champion's own version: the gate must not compare it with itself, nor
    # overwrite the recorded decision that made it champion with a new "no champion yet" one.
    name = "rerun_champion"
    first = new_version(registry, name)
    promotion_gate(dg.build_asset_context(), registry, name, "accuracy", first, 0.8, lambda champion: 0.0)
    second = new_version(registry, name)
    won = promotion_gate(dg.build_asset_context(), registry, name, "accuracy", second, 0.9, lambda champion: 0.7)
    recorded = dict(registry.client().get_model_version(name, second).tags)

    again = promotion_gate(dg.build_asset_context(), registry, name, "accuracy", second, 0.9, lambda champion: 0.0)
    assert again.passed and "is the champion already" in again.description
    assert str(registry.version_by_alias(name, CHAMPION).version) == second
    assert dict(registry.client().get_model_version(name, second).tags) == recorded
    assert recorded["promotion.reason"] == won.description
