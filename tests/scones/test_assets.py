"""The real training of the group: dataset layout against the original project, the accuracy bar, the gate."""

import io

import numpy as np
import pytest
from PIL import Image

from mlops_assets.scones.assets import load_split, promotion_gate
from mlops_assets.scones.cifar import parse_manifest
from mlops_assets.scones.constants import MODEL_NAME, ORIGINAL_BEST_ACCURACY
from mlops_assets.scones.evaluation import Evaluation
from resources import build_object_store, build_registry

pytestmark = pytest.mark.realdata


def test_classifier_beats_the_original_resnet(scones_platform):
    meta = scones_platform.metadata("image_classifier")
    assert meta["accuracy"] >= ORIGINAL_BEST_ACCURACY
    assert 0.0 < meta["recall_bicycle"] <= 1.0 and 0.0 < meta["recall_motorcycle"] <= 1.0
    # The two recalls average to the accuracy on a balanced test set.
    assert (meta["recall_bicycle"] + meta["recall_motorcycle"]) / 2 == pytest.approx(meta["accuracy"])
    assert meta["preview"].startswith("![confusion matrix")
    gate = scones_platform.check("image_classifier", "promotion_gate")
    assert gate.passed
    registry = build_registry(scones_platform.settings)
    champion = registry.version_by_alias(MODEL_NAME)
    assert champion is not None and str(champion.version) == meta["model_version"]


def test_dataset_checks_pass(scones_platform):
    assert scones_platform.check("labelled_images", "labelled_images_counts").passed
    decode = scones_platform.check("labelled_images", "labelled_images_decode")
    assert decode.passed and decode.metadata["checked"].value == 1200


@pytest.mark.parametrize("split", ["train", "test"])
def test_pngs_and_manifests_match_the_original_project(scones_platform, split):
    store = build_object_store(scones_platform.settings)
    original = scones_platform.data / "scones"
    ours = parse_manifest(store.get_bytes(f"scones/{split}.lst").decode())
    theirs = parse_manifest((original / f"{split}.lst").read_text())
    # Same images, same labels, same order; rows number the pickle that was read (the 2-class subset here,
    # whose rows keep the original order), so they are compared by order, not by value.
    assert [(label, name) for _, label, name in ours] == [(label, name) for _, label, name in theirs]
    assert [row for row, _, _ in ours] == sorted(row for row, _, _ in ours)
    for _, _, name in ours:
        mine = np.asarray(Image.open(io.BytesIO(store.get_bytes(f"scones/{split}/{name}"))))
        reference = np.asarray(Image.open(original / split / name))
        assert mine.shape == (32, 32, 3)
        assert np.array_equal(mine, reference[:, :, :3]), name
        assert (reference[:, :, 3] == 255).all()


def test_worse_candidate_becomes_challenger(scones_platform):
    import dagster as dg
    import pandas as pd

    settings = scones_platform.settings
    store, registry = build_object_store(settings), build_registry(settings)
    champion = registry.version_by_alias(MODEL_NAME)
    candidate = registry.register(MODEL_NAME, f"models:/{MODEL_NAME}/{champion.version}", champion.run_id)
    import duckdb

    with duckdb.connect(str(settings.duckdb_path), read_only=True) as connection:
        index = connection.execute("SELECT * FROM scones.labelled_images").df()
    x_test, y_test = load_split(index, "test", store)
    always_bicycle = Evaluation(y_test, np.tile([0.9, 0.1], (len(y_test), 1)), 0.85)
    result = promotion_gate(
        dg.build_asset_context(), registry, x_test, y_test, str(candidate.version), always_bicycle.accuracy
    )
    assert not result.passed
    assert result.metadata["decision"].value == "challenger"
    assert registry.version_by_alias(MODEL_NAME).version == champion.version
    assert isinstance(index, pd.DataFrame)
