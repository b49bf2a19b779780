"""The sweep as MLflow sees it: one parent run per materialization, one nested run per configuration.

Runs are written with MlflowClient (create_run + one log_batch each) rather than the fluent API, while later
configurations are still being fitted in worker processes; only the best run uploads a model artifact.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_assets.common.constants import DAGSTER_RUN_TAG
from mlops_assets.pistachio.constants import EXPERIMENT_NAME
from mlops_assets.pistachio.features import TRUSTED_MODEL_TYPES
from mlops_assets.pistachio.sweep import Config, FitResult, SplitData, best_result, fit_grid
from resources.mlflow_registry import MlflowRegistry

if TYPE_CHECKING:
    import pandas as pd

PARENT_RUN_TAG = "mlflow.parentRunId"


@dataclass(frozen=True)
class SweepOutcome:
    results: list[FitResult]
    best: FitResult
    run_ids: list[str]
    parent_run_id: str
    best_run_id: str
    model_uri: str
    experiment_id: str
    seconds: float
    logging_seconds: float  # time spent writing to MLflow, mostly overlapped with fitting

    @property
    def convergence_warnings(self) -> int:
        return sum(not result.converged for result in self.results)


def _child_record(result: FitResult, now_ms: int):
    from mlflow.entities import Metric, Param, RunTag

    params = [
        Param("C", f"{result.config.C:g}"),
        Param("max_iter", str(result.config.max_iter)),
        Param("solver", result.config.solver),
    ]
    metrics = [
        Metric(key, float(value), now_ms, 0)
        for key, value in (
            ("val_AUC", result.val_auc),
            ("test_AUC", result.test_auc),
            ("val_AUC_proba", result.val_auc_proba),
            ("test_AUC_proba", result.test_auc_proba),
            ("n_iter", result.n_iter),
            ("converged", float(result.converged)),
            ("fit_seconds", result.fit_seconds),
        )
    ]
    tags = [RunTag("converged", str(result.converged).lower())]
    if result.warning:
        tags.append(RunTag("convergence_warning", result.warning))
    return params, metrics, tags


def run_sweep(
    registry: MlflowRegistry,
    configs: list[Config],
    data: SplitData,
    snapshot: str,
    dagster_run_id: str,
    tags: dict[str, str] | None = None,
) -> SweepOutcome:
    """Fit every configuration, log each as a nested run, log the best one's model; timed end to end.

    A single logger thread writes each finished fit to MLflow while the next one is being fitted: SQLite
    commits wait on the disk, so the two overlap instead of adding up.
    """
    from mlflow.entities import Metric, RunTag

    started = time.perf_counter()
    client = registry.client()
    experiment_id = registry.experiment_id(EXPERIMENT_NAME)
    common = {"snapshot": snapshot, DAGSTER_RUN_TAG: dagster_run_id, **(tags or {})}
    parent_id = client.create_run(
        experiment_id, run_name=f"sweep {snapshot}", tags={**common, "role": "sweep"}
    ).info.run_id
    logging_seconds = [time.perf_counter() - started]

    def log_child(result: FitResult) -> str:
        logging_started = time.perf_counter()
        run_id = client.create_run(
            experiment_id, run_name=result.config.label, tags={**common, PARENT_RUN_TAG: parent_id}
        ).info.run_id
        params, metrics, tags = _child_record(result, int(time.time() * 1000))
        client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        client.set_terminated(run_id)
        logging_seconds.append(time.perf_counter() - logging_started)
        return run_id

    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pistachio-sweep-log") as logger:
            results, pending = [], []
            for result in fit_grid(configs, data):
                results.append(result)
                pending.append(logger.submit(log_child, result))
            run_ids = [future.result() for future in pending]
        best = best_result(results)
        best_run_id = run_ids[results.index(best)]
        logging_started = time.perf_counter()
        mlflow = registry.activate()
        with mlflow.start_run(run_id=best_run_id):
            info = registry.log_sklearn_model(best.pipeline, name="model", skops_trusted_types=TRUSTED_MODEL_TYPES)
        now_ms = int(time.time() * 1000)
        seconds = time.perf_counter() - started
        logging_seconds.append(time.perf_counter() - logging_started)
        client.log_batch(
            parent_id,
            metrics=[
                Metric("best_val_AUC", best.val_auc, now_ms, 0),
                Metric("best_test_AUC", best.test_auc, now_ms, 0),
                Metric("runs", float(len(results)), now_ms, 0),
                Metric("convergence_warnings", float(sum(not r.converged for r in results)), now_ms, 0),
                Metric("sweep_seconds", seconds, now_ms, 0),
                Metric("logging_seconds", sum(logging_seconds), now_ms, 0),
            ],
            tags=[RunTag("best_run_id", best_run_id), RunTag("best_config", best.config.label)],
        )
        client.set_terminated(parent_id)
    except BaseException:
        client.set_terminated(parent_id, status="FAILED")
        raise
    return SweepOutcome(
        results, best, run_ids, parent_id, best_run_id, info.model_uri, experiment_id, seconds, sum(logging_seconds)
    )


def recorded_sweep(registry: MlflowRegistry, best_run_id: str, model_uri: str) -> pd.DataFrame:
    """The results table of an earlier sweep, read back from its nested runs (the sweep that `best_run_id` won).

    What a skipped training re-emits: the same rows `results_frame` built when the sweep ran, in grid order.
    """
    import pandas as pd

    client = registry.client()
    best = client.get_run(best_run_id)
    parent_id = best.data.tags[PARENT_RUN_TAG]
    children = client.search_runs(
        [best.info.experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent_id}'", max_results=1000
    )
    rows = []
    for run in sorted(children, key=lambda run: run.info.start_time):
        params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
        rows.append(
            {
                "C": float(params["C"]),
                "max_iter": int(params["max_iter"]),
                "solver": params["solver"],
                "val_auc": metrics["val_AUC"],
                "test_auc": metrics["test_AUC"],
                "val_auc_proba": metrics["val_AUC_proba"],
                "test_auc_proba": metrics["test_AUC_proba"],
                "n_iter": int(metrics["n_iter"]),
                "converged": bool(metrics["converged"]),
                "convergence_warning": tags.get("convergence_warning", ""),
                "fit_seconds": metrics["fit_seconds"],
                "mlflow_run_id": run.info.run_id,
                "is_best": run.info.run_id == best_run_id,
                "model_uri": model_uri if run.info.run_id == best_run_id else "",
            }
        )
    return pd.DataFrame(rows)
