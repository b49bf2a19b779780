"""The survival model is not trained again from identical inputs; new data or hyper-parameters train anew."""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from mlops_assets.common.training import FINGERPRINT_TAG, SKIPPED, TRAINED
from mlops_assets.titanic import assets
from mlops_assets.titanic.constants import MODEL_NAME
from mlops_assets.titanic.features import in_holdout, synthetic_passenger
from resources import build_registry
from resources.mlflow_registry import CHAMPION
from resources.settings import PlatformSettings


def small_split(days: int) -> pd.DataFrame:
    start = dt.date(2026, 1, 1)
    group = pd.DataFrame([synthetic_passenger(start + dt.timedelta(days=n)) for n in range(days)])
    return group.assign(source="kaggle", split=in_holdout(group["passenger_id"]).map({True: "holdout", False: "train"}))


def materialize(registry, split: pd.DataFrame) -> dict:
    @dg.asset(key=["titanic", "training_split"], group_name="titanic")
    def training_split() -> pd.DataFrame:
        return split

    result = dg.materialize(
        [training_split, assets.survival_model, assets.survival_model_gate],
        resources={"io_manager": dg.mem_io_manager, "mlflow": registry},
    )
    assert result.success
    [gate] = result.get_asset_check_evaluations()
    assert gate.passed
    event = result.asset_materializations_for_node("titanic__survival_model")[0]
    return {k: v.value for k, v in event.metadata.items()}


@pytest.fixture
def registry(tmp_path):
    return build_registry(PlatformSettings.from_env({"MLOPS_HOME": str(tmp_path)}))


def versions(registry) -> list[str]:
    return sorted(str(v.version) for v in registry.client().search_model_versions(f"name = '{MODEL_NAME}'"))


def test_identical_inputs_train_once_and_changes_train_again(registry, monkeypatch):
    split = small_split(120)
    first = materialize(registry, split)
    assert first["training"] == TRAINED and versions(registry) == ["1"]
    tag = registry.client().get_model_version(MODEL_NAME, "1").tags[FINGERPRINT_TAG]
    assert tag == first[FINGERPRINT_TAG]

    again = materialize(registry, split)
    assert again["training"] == SKIPPED and again["model_version"] == "1" and versions(registry) == ["1"]
    assert again["accuracy"] == first["accuracy"] and again["mlflow_run_id"] == first["mlflow_run_id"]
    assert str(registry.version_by_alias(MODEL_NAME, CHAMPION).version) == "1"

    more_data = materialize(registry, small_split(121))
    assert more_data["training"] == TRAINED and versions(registry) == ["1", "2"]

    monkeypatch.setitem(assets.MODEL_PARAMS, "max_depth", 3)
    deeper = materialize(registry, small_split(121))
    assert deeper["training"] == TRAINED and versions(registry) == ["1", "2", "3"]
