import numpy as np
import pytest
from sklearn.dummy import DummyClassifier

from mlops_assets.common.promotion import apply_promotion, decide_alias
from resources import build_registry
from resources.mlflow_registry import CHALLENGER, CHAMPION
from resources.settings import PlatformSettings


def test_rule():
    assert decide_alias(0.7, None) == CHAMPION
    assert decide_alias(0.7, 0.8) == CHALLENGER
    assert decide_alias(0.8, 0.8) == CHAMPION  # ties go to the newer model
    assert decide_alias(0.9, 0.8) == CHAMPION


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    home = tmp_path_factory.mktemp("mlflow")
    return build_registry(PlatformSettings.from_env({"MLOPS_HOME": str(home)}))


def new_version(registry, name):
    with registry.start_run("promotion-test") as run:
        info = registry.log_sklearn_model(DummyClassifier().fit(np.zeros((2, 1)), [0, 1]))
    return registry.register(name, info.model_uri, run.info.run_id, tags={"dagster_run_id": "r"}).version


def test_first_worse_and_equal_candidates(registry):
    name = "promotion_demo"
    v1 = new_version(registry, name)
    first = apply_promotion(registry, name, "auc", v1, 0.80, None, None)
    assert first.promoted and registry.version_by_alias(name, CHAMPION).version == v1

    v2 = new_version(registry, name)
    worse = apply_promotion(registry, name, "auc", v2, 0.70, v1, 0.80)
    assert not worse.promoted and "worse" in worse.reason
    assert registry.version_by_alias(name, CHAMPION).version == v1
    assert registry.version_by_alias(name, CHALLENGER).version == v2
    assert registry.client().get_model_version(name, v2).tags["promotion.decision"] == CHALLENGER

    v3 = new_version(registry, name)
    equal = apply_promotion(registry, name, "auc", v3, 0.80, v1, 0.80)
    assert equal.promoted
    assert registry.version_by_alias(name, CHAMPION).version == v3
    assert registry.client().get_model_version(name, v1).tags["promotion.replaced_by"] == str(v3)
    assert equal.metadata()["champion_auc"].value == 0.80
