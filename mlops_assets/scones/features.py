"""Single-layer k-means convolutional features (Coates, Lee & Ng, 2011) as a scikit-learn transformer.

No pretrained weights can be downloaded here, and a CPU must train in well under a minute, so the features are
learned from the 1,000 training images themselves: random 6x6 colour patches are brightness/contrast
normalised and ZCA-whitened, k-means on them gives a dictionary of edge and colour detectors, and every image
is described by the "triangle" activation of each detector at every position, sum-pooled over a 3x3 grid.
Features of the image and of its mirror image are added, so the representation cannot tell left from right:
bicycles and motorcycles face both ways, and this is horizontal-flip augmentation at no training cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import MiniBatchKMeans
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

if TYPE_CHECKING:
    import numpy as np

IMAGE_SHAPE = (32, 32, 3)


def as_images(X) -> np.ndarray:
    """N x 32 x 32 x 3 float32 from either that shape or flattened N x 3072 rows (height, width, channel)."""
    import numpy as np

    array = np.asarray(X)
    if array.ndim == 2 and array.shape[1] == int(np.prod(IMAGE_SHAPE)):
        array = array.reshape(-1, *IMAGE_SHAPE)
    if array.ndim != 4 or array.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"expected images of shape N x 32 x 32 x 3 (or N x 3072), got {array.shape}")
    return array.astype(np.float32, copy=False)


class PatchDictionaryFeatures(TransformerMixin, BaseEstimator):
    """Images (N x 3072, HWC order) → pooled triangle activations of a learned patch dictionary."""

    def __init__(
        self,
        patch_size: int = 6,
        n_centroids: int = 256,
        n_patches: int = 20000,
        grid: int = 3,
        contrast_eps: float = 10.0,
        whitening_eps: float = 0.1,
        kmeans_epochs: int = 10,
        batch_size: int = 8,
        random_state: int = 0,
    ):
        self.patch_size = patch_size
        self.n_centroids = n_centroids
        self.n_patches = n_patches
        self.grid = grid
        self.contrast_eps = contrast_eps
        self.whitening_eps = whitening_eps
        self.kmeans_epochs = kmeans_epochs
        self.batch_size = batch_size
        self.random_state = random_state

    def _normalise(self, patches: np.ndarray) -> np.ndarray:
        import numpy as np

        centred = patches - patches.mean(axis=1, keepdims=True)
        return centred / np.sqrt(centred.var(axis=1, keepdims=True) + self.contrast_eps)

    def fit(self, X, y=None):
        import numpy as np

        images = as_images(X)
        images = np.concatenate([images, images[:, :, ::-1]])
        rng = np.random.default_rng(self.random_state)
        size, limit = self.patch_size, IMAGE_SHAPE[0] - self.patch_size + 1
        which = rng.integers(0, len(images), self.n_patches)
        tops, lefts = rng.integers(0, limit, self.n_patches), rng.integers(0, limit, self.n_patches)
        patches = np.stack(
            [images[i, t : t + size, x : x + size].reshape(-1) for i, t, x in zip(which, tops, lefts, strict=False)]
        )
        patches = self._normalise(patches)
        self.mean_ = patches.mean(axis=0)
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov(patches, rowvar=False))
        self.whitening_ = (
            eigenvectors @ np.diag(1.0 / np.sqrt(eigenvalues + self.whitening_eps)) @ eigenvectors.T
        ).astype(np.float32)
        whitened = (patches - self.mean_) @ self.whitening_
        with threadpool_limits(limits=1):  # 18 s → 3 s on a busy 2-core machine: the batches are small
            kmeans = MiniBatchKMeans(
                n_clusters=self.n_centroids,
                random_state=self.random_state,
                batch_size=2048,
                n_init=1,
                max_iter=self.kmeans_epochs,
            ).fit(whitened)
        self.centroids_ = kmeans.cluster_centers_.astype(np.float32)
        self.n_features_out_ = self.n_centroids * self.grid * self.grid
        return self

    def _pooled(self, images: np.ndarray) -> np.ndarray:
        import numpy as np

        size = self.patch_size
        windows = sliding_window_view(images, (size, size), axis=(1, 2))  # N, h, w, C, size, size
        n, height, width = windows.shape[:3]
        patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, size * size * IMAGE_SHAPE[2])
        whitened = self._normalise(patches)
        whitened -= self.mean_.astype(np.float32)
        whitened = whitened @ self.whitening_
        # Squared distances to every centroid, computed in place: these arrays dominate memory traffic.
        distances = whitened @ self.centroids_.T
        distances *= -2.0
        distances += (whitened * whitened).sum(axis=1, keepdims=True)
        distances += (self.centroids_ * self.centroids_).sum(axis=1)[None, :]
        np.maximum(distances, 0.0, out=distances)
        np.sqrt(distances, out=distances)
        # Triangle activation: a detector fires by how much closer than average the patch is to its centroid.
        activations = np.subtract(distances.mean(axis=1, keepdims=True), distances, out=distances)
        np.maximum(activations, 0.0, out=activations)
        activations = activations.reshape(n, height, width, self.n_centroids)
        edges = np.linspace(0, height, self.grid + 1).round().astype(int)
        cells = [
            activations[:, edges[i] : edges[i + 1], edges[j] : edges[j + 1]].sum(axis=(1, 2))
            for i in range(self.grid)
            for j in range(self.grid)
        ]
        return np.concatenate(cells, axis=1)

    def transform(self, X) -> np.ndarray:
        import numpy as np

        images = as_images(X)
        chunks = []
        # The matrices per batch are small: BLAS threads cost more in hand-offs than they save (2x slower
        # measured on a busy 2-core machine), so one thread per transform.
        with threadpool_limits(limits=1):
            for start in range(0, len(images), self.batch_size):
                batch = images[start : start + self.batch_size]
                chunks.append(self._pooled(batch) + self._pooled(batch[:, :, ::-1]))
        if not chunks:
            return np.zeros((0, self.n_centroids * self.grid * self.grid), dtype=np.float32)
        return np.concatenate(chunks)


def build_classifier(random_state: int = 0, regularisation: float = 0.003, **feature_params) -> Pipeline:
    """The whole model: raw 32x32 RGB pixels in, [p_bicycle, p_motorcycle] out of predict_proba."""
    return Pipeline(
        [
            ("features", PatchDictionaryFeatures(random_state=random_state, **feature_params)),
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(C=regularisation, max_iter=2000)),
        ]
    )
