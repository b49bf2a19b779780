"""The image classifier is not trained again from identical images; new images train anew (hyper-parameter
changes are covered by the Titanic model's test: the fingerprint is the same code)."""

import functools

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from mlops_assets.common.training import SKIPPED, TRAINED
from mlops_assets.scones import assets, features
from mlops_assets.scones.cifar import png_bytes
from mlops_assets.scones.constants import MODEL_NAME
from resources import LocalObjectStore, build_registry
from resources.settings import PlatformSettings


def write_images(store, seed: int, per_class: dict[str, int]) -> pd.DataFrame:
    """Random 32x32 images, class 1 brighter than class 0, stored as PNGs and indexed like labelled_images."""
    rng = np.random.default_rng(seed)
    rows = []
    for split, count in per_class.items():
        for n in range(count):
            label = n % 2
            pixels = rng.integers(0, 128, (32, 32, 3), dtype=np.uint8) + np.uint8(100 * label)
            key = f"scones/{split}/image_{n}.png"
            store.put_bytes(key, png_bytes(pixels), "image/png")
            rows.append({"split": split, "label": label, "key": key})
    return pd.DataFrame(rows)


def materialize(store, registry, index: pd.DataFrame) -> dict:
    @dg.asset(key=["scones", "labelled_images"], group_name="scones")
    def labelled_images() -> pd.DataFrame:
        return index

    result = dg.materialize(
        [labelled_images, assets.image_classifier],
        resources={"io_manager": dg.mem_io_manager, "object_store": store, "mlflow": registry},
    )
    assert result.success
    event = result.asset_materializations_for_node("scones__image_classifier")[0]
    return {k: v.value for k, v in event.metadata.items()}


@pytest.fixture
def small_model(monkeypatch):
    """The real pipeline with a small patch dictionary, so a fit on 40 images takes about a second."""
    original = features.build_classifier
    small = functools.partial(original, n_centroids=16, n_patches=2000, kmeans_epochs=2)
    monkeypatch.setattr(features, "build_classifier", small)


def test_identical_images_train_once_and_changes_train_again(tmp_path, small_model):
    store = LocalObjectStore(root=str(tmp_path / "objects"))
    registry = build_registry(PlatformSettings.from_env({"MLOPS_HOME": str(tmp_path / "mlops")}))

    def versions():
        return sorted(str(v.version) for v in registry.client().search_model_versions(f"name = '{MODEL_NAME}'"))

    index = write_images(store, seed=1, per_class={"train": 40, "test": 20})
    first = materialize(store, registry, index)
    assert first["training"] == TRAINED and versions() == ["1"]
    again = materialize(store, registry, index)
    assert again["training"] == SKIPPED and again["model_version"] == "1" and versions() == ["1"]
    assert again["accuracy"] == first["accuracy"]

    write_images(store, seed=2, per_class={"train": 40, "test": 20})  # same keys, new pixels
    assert materialize(store, registry, index)["training"] == TRAINED and versions() == ["1", "2"]
