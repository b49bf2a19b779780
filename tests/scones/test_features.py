"""The patch-dictionary transformer on small synthetic images (the real accuracy is tested in test_assets)."""

import numpy as np
import pytest

from mlops_assets.scones.features import PatchDictionaryFeatures, build_classifier


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)


def small(**extra):
    return PatchDictionaryFeatures(n_centroids=8, n_patches=500, kmeans_epochs=2, **extra)


def test_shapes_and_mirror_invariance(images):
    features = small().fit(images)
    out = features.transform(images.reshape(len(images), -1))
    assert out.shape == (24, 8 * 9) and (out >= 0).all()
    assert np.allclose(features.transform(images[:, :, ::-1]).sum(axis=1), out.sum(axis=1), rtol=1e-4)


def test_deterministic_for_a_random_state(images):
    first = small(random_state=3).fit(images).transform(images[:4])
    again = small(random_state=3).fit(images).transform(images[:4])
    assert np.allclose(first, again)


def test_rejects_wrong_shapes(images):
    with pytest.raises(ValueError, match="N x 32 x 32 x 3"):
        small().fit(images[:, :16])


def test_classifier_outputs_two_probabilities(images):
    labels = np.arange(len(images)) % 2
    model = build_classifier(n_centroids=8, n_patches=500, kmeans_epochs=2).fit(images.reshape(24, -1), labels)
    probabilities = model.predict_proba(images[:3].reshape(3, -1))
    assert probabilities.shape == (3, 2) and np.allclose(probabilities.sum(axis=1), 1.0)
