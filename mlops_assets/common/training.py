"""Training that is skipped when nothing it depends on changed.

A model asset fingerprints what its fit depends on (its code version, its hyper-parameters, the content of its
inputs) and tags the registered version with it. When a version with the same fingerprint is already in the
registry, the asset re-emits that version instead of fitting again: no new fit, no new registry version, and the
same data version, so Dagster shows everything downstream as up to date.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import dagster as dg

from resources.mlflow_registry import MlflowRegistry

FINGERPRINT_TAG = "training.fingerprint"
SKIPPED = "skipped: inputs identical"
TRAINED = "trained"


def content_version(*parts: Any) -> str:
    """A content hash of DataFrames, arrays and bytes: equal content, equal version, whatever produced it."""
    import numpy as np
    import pandas as pd

    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, pd.DataFrame):
            digest.update(json.dumps([list(map(str, part.columns)), list(map(str, part.dtypes))]).encode())
            digest.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
        elif isinstance(part, np.ndarray):
            digest.update(f"{part.dtype}{part.shape}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        else:
            digest.update(part if isinstance(part, bytes) else str(part).encode())
    return digest.hexdigest()[:16]


def fingerprint(code_version: str | None, params: dict[str, Any], inputs: dict[str, str]) -> str:
    payload = json.dumps(
        {"code_version": code_version, "params": params, "inputs": inputs}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def asset_code_version(context: dg.AssetExecutionContext) -> str | None:
    return context.assets_def.code_versions_by_key.get(context.asset_key)


def registered_version(registry: MlflowRegistry, model_name: str, training_fingerprint: str):
    """The newest registered version of `model_name` trained from exactly these inputs, or None."""
    try:
        found = registry.client().search_model_versions(
            f"name = '{model_name}' and tags.`{FINGERPRINT_TAG}` = '{training_fingerprint}'"
        )
    except Exception as exc:
        from mlflow.exceptions import MlflowException

        if isinstance(exc, MlflowException) and exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return max(found, key=lambda version: int(version.version), default=None)


def skipped_result(
    registry: MlflowRegistry,
    model_name: str,
    version,
    training_fingerprint: str,
    extra: dict[str, Any] | None = None,
    run_metrics: bool = True,
) -> dg.MaterializeResult:
    """The materialization of a skipped training: the existing version, its run's metrics, and why.

    `run_metrics=False` leaves the run's MLflow metrics out, for a system whose run names them differently from
    its asset metadata (Pistachio's runs keep the original's `val_AUC`); `extra` then carries the scores.
    """
    run = registry.client().get_run(version.run_id) if version.run_id else None
    metrics = (
        {}
        if run is None or not run_metrics
        else {name: dg.MetadataValue.float(float(value)) for name, value in run.data.metrics.items()}
    )
    links = (
        {}
        if run is None
        else registry.link_metadata(version.run_id, model_name, version.version, run.info.experiment_id)
    )
    return dg.MaterializeResult(
        metadata={
            **metrics,
            "training": dg.MetadataValue.text(SKIPPED),
            "model_version": dg.MetadataValue.text(str(version.version)),
            "mlflow_run_id": dg.MetadataValue.text(str(version.run_id or "")),
            **links,
            FINGERPRINT_TAG: dg.MetadataValue.text(training_fingerprint),
            **(extra or {}),
        },
        data_version=dg.DataVersion(training_fingerprint),
    )
