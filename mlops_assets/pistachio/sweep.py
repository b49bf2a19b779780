"""The original's model search: 60/20/20 split, 96 logistic-regression configurations, AUC on hard predictions.

Pure functions (no Dagster): the asset calls `run_sweep`, tests call it on a small grid with a temporary MLflow.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from threadpoolctl import threadpool_limits

from mlops_assets.pistachio.constants import (
    FEATURES,
    GRID_C,
    GRID_MAX_ITER,
    GRID_SOLVER,
    RANDOM_STATE,
    TARGET,
)
from mlops_assets.pistachio.features import as_records

if TYPE_CHECKING:
    import pandas as pd

if TYPE_CHECKING:  # scikit-learn is imported by the functions that split and fit, not by the code location
    from sklearn.pipeline import Pipeline

SPLITS = ("train", "val", "test")


def split_snapshot(frame: pd.DataFrame, random_state: int = RANDOM_STATE) -> pd.DataFrame:
    """The original's split: 20% test, then 25% of the rest as validation (60/20/20), in its row order.

    Returns the rows with `split` and `position` (order inside the split, which seeded solvers depend on).
    """
    import pandas as pd
    from sklearn.model_selection import train_test_split

    full_train, test = train_test_split(frame, test_size=0.2, random_state=random_state)
    train, val = train_test_split(full_train, test_size=0.25, random_state=random_state)
    parts = []
    for name, part in zip(SPLITS, (train, val, test), strict=False):
        part = part.reset_index(drop=True).copy()
        part.insert(0, "split", name)
        part.insert(1, "position", range(len(part)))
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class SplitData:
    """Records and labels of the three splits, as the original passed them to its pipeline."""

    X: dict[str, list[dict[str, float]]]
    y: dict[str, Any]

    @classmethod
    def from_frame(cls, splits: pd.DataFrame) -> SplitData:
        X, y = {}, {}
        for name in SPLITS:
            part = splits[splits["split"] == name].sort_values("position")
            X[name] = part[list(FEATURES)].astype(float).to_dict(orient="records")
            y[name] = part[TARGET].astype(int).to_numpy()
        return cls(X, y)


@dataclass(frozen=True)
class Config:
    C: float
    max_iter: int
    solver: str

    @property
    def label(self) -> str:
        return f"C={self.C:g} max_iter={self.max_iter} {self.solver}"


def full_grid() -> list[Config]:
    return [Config(float(c), m, s) for c, m, s in itertools.product(GRID_C, GRID_MAX_ITER, GRID_SOLVER)]


def build_pipeline(config: Config) -> Pipeline:
    """DictVectorizer + LogisticRegression(random_state=1), behind an adapter that also accepts DataFrames.

    Dense output: scikit-learn 1.9's DictVectorizer emits int64 sparse indices that LogisticRegression rejects.
    """
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    return Pipeline(
        [
            ("records", FunctionTransformer(as_records)),
            ("vectorizer", DictVectorizer(sparse=False)),
            (
                "classifier",
                LogisticRegression(
                    C=config.C, max_iter=config.max_iter, solver=config.solver, random_state=RANDOM_STATE
                ),
            ),
        ]
    )


@dataclass
class FitResult:
    config: Config
    val_auc: float
    test_auc: float
    val_auc_proba: float
    test_auc_proba: float
    n_iter: int
    converged: bool
    warning: str | None
    fit_seconds: float
    pipeline: Pipeline


def fit_config(config: Config, data: SplitData) -> FitResult:
    """Fit one configuration; a ConvergenceWarning is captured and returned, never hidden nor printed."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import roc_auc_score

    started = time.perf_counter()
    pipeline = build_pipeline(config)
    # One BLAS thread per fit: with parallel fits (and other jobs) on two cores, more threads only thrash.
    with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        pipeline.fit(data.X["train"], data.y["train"])
    convergence = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    scores = {}
    for name in ("val", "test"):
        hard = pipeline.predict(data.X[name])
        proba = pipeline.predict_proba(data.X[name])[:, 1]
        scores[name] = (float(roc_auc_score(data.y[name], hard)), float(roc_auc_score(data.y[name], proba)))
    n_iter = int(max(pipeline.named_steps["classifier"].n_iter_))
    return FitResult(
        config,
        scores["val"][0],
        scores["test"][0],
        scores["val"][1],
        scores["test"][1],
        n_iter,
        not convergence,
        str(convergence[0].message).splitlines()[0] if convergence else None,
        time.perf_counter() - started,
        pipeline,
    )


def fit_grid(configs: Iterable[Config], data: SplitData) -> Iterator[FitResult]:
    """Results in grid order, each as soon as it is fitted, so the caller can log while later fits run.

    Serial on purpose: worker processes (joblib/loky) cost more in start-up and imports than they saved on two
    shared cores, and threads cannot capture warnings per fit (the warnings filter is process-global).
    """
    return (fit_config(config, data) for config in configs)


def best_result(results: list[FitResult]) -> FitResult:
    """Highest validation AUC (the original's rule); ties go to a converged fit, then to grid order."""
    ranked = sorted(enumerate(results), key=lambda item: (-item[1].val_auc, not item[1].converged, item[0]))
    return ranked[0][1]


def results_frame(results: list[FitResult], best: FitResult, run_ids: list[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "C": r.config.C,
                "max_iter": r.config.max_iter,
                "solver": r.config.solver,
                "val_auc": r.val_auc,
                "test_auc": r.test_auc,
                "val_auc_proba": r.val_auc_proba,
                "test_auc_proba": r.test_auc_proba,
                "n_iter": r.n_iter,
                "converged": r.converged,
                "convergence_warning": r.warning or "",
                "fit_seconds": r.fit_seconds,
                "mlflow_run_id": run_id,
                "is_best": r is best,
            }
            for r, run_id in zip(results, run_ids, strict=False)
        ]
    )
