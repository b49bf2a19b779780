"""Pistachio monitoring: every weekly file is labelled, so the champion that served before it is scored on it
(realized accuracy and AUC per week) before the file's own retraining can replace that champion; and drift of
the kernels classified on `/classify` against the champion's training rows."""

from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common.constants import DUCKDB_POOL
from mlops_assets.common.drift import drift_output
from mlops_assets.common.keys import key, placement
from mlops_assets.common.monitoring import DRIFT_CHECK, HOURLY, PERFORMANCE_CHECK, check_spec, parse_inputs, read_log
from mlops_assets.common.performance import performance_check, performance_output
from mlops_assets.common.tables import table_metadata
from mlops_assets.pistachio.constants import (
    FEATURES,
    MODEL_NAME,
    SYSTEM,
    TARGET,
    TRAINING_DATAFILE_TAG,
    VALIDATION_AUC_TAG,
)
from mlops_assets.pistachio.model_file import load_pipeline
from mlops_assets.pistachio.partitions import snapshot_partitions
from resources.mlflow_registry import CHAMPION, MlflowRegistry, model_uri
from resources.monitoring import MonitoringSettings
from resources.object_store import ObjectStore
from resources.tables import Tables

if TYPE_CHECKING:
    import pandas as pd

COMMON = placement(SYSTEM)
CLASSIFY_ROUTE = "/classify"
CHECKS = [
    dg.AssetCheckKey(key(SYSTEM, "input_drift"), DRIFT_CHECK),
    dg.AssetCheckKey(key(SYSTEM, "realized_performance_chart"), PERFORMANCE_CHECK),
]
PERFORMANCE_COLUMNS = {
    "snapshot": "object",
    "model_version": "object",
    "trained_on": "object",
    "rows": "int64",
    "accuracy": "float64",
    "auc": "float64",
    "auc_proba": "float64",
}


def latest_snapshot(instance: dg.DagsterInstance) -> str | None:
    """Retraining reruns the newest weekly file (file names sort by date)."""
    keys = instance.get_dynamic_partitions(snapshot_partitions.name)
    return max(keys) if keys else None


def serving_before(mlflow: MlflowRegistry, snapshot: str):
    """The version that served when `snapshot` arrived: the newest version ever promoted champion whose
    training file is older. Found from the registry's tags, so it does not matter whether the file's own
    retraining has already run."""
    candidates = []
    for version in mlflow.client().search_model_versions(f"name='{MODEL_NAME}'"):
        tags = version.tags or {}
        trained_on = tags.get(TRAINING_DATAFILE_TAG, "")
        ever_champion = tags.get("promotion.decision") == CHAMPION or "promotion.replaced_by" in tags
        if ever_champion and trained_on and trained_on < snapshot:
            candidates.append(version)
    return max(candidates, key=lambda version: int(version.version)) if candidates else None


def score(model, frame: "pd.DataFrame") -> dict[str, float]:
    from sklearn.metrics import accuracy_score, roc_auc_score

    rows = frame[list(FEATURES)].astype(float).to_dict(orient="records")
    truth = frame[TARGET].astype(int).to_numpy()
    hard = model.predict(rows)
    proba = model.predict_proba(rows)[:, 1]
    both = len(set(truth)) == 2
    return {
        "accuracy": float(accuracy_score(truth, hard)),
        "auc": float(roc_auc_score(truth, hard)) if both else float("nan"),
        "auc_proba": float(roc_auc_score(truth, proba)) if both else float("nan"),
    }


@dg.asset(
    **COMMON,
    kinds={"scikit-learn", "duckdb"},
    code_version="1",
    pool=DUCKDB_POOL,
    partitions_def=snapshot_partitions,
    metadata={"partition_expr": "snapshot"},
    automation_condition=dg.AutomationCondition.eager(),
    ins={"raw_snapshot": dg.AssetIn(key=key(SYSTEM, "raw_snapshot"))},
)
def realized_performance(context: dg.AssetExecutionContext, raw_snapshot, mlflow: MlflowRegistry):
    """The week's labelled file scored by the champion that was serving when it arrived (AUC on hard
    predictions, the original's metric, and on probabilities). The first file has no earlier champion."""
    import pandas as pd

    snapshot = context.partition_key
    version = serving_before(mlflow, snapshot)
    if version is None:
        context.log.info("no champion served before %s: nothing to score", snapshot)
        empty = pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in PERFORMANCE_COLUMNS.items()})
        return dg.Output(
            empty, metadata={**table_metadata(empty), "note": dg.MetadataValue.text(f"no champion before {snapshot}")}
        )
    model = load_pipeline(mlflow, model_uri(MODEL_NAME, version.version))
    figures = score(model, raw_snapshot)
    row = pd.DataFrame(
        [
            {
                "snapshot": snapshot,
                "model_version": str(version.version),
                "trained_on": version.tags.get(TRAINING_DATAFILE_TAG),
                "rows": len(raw_snapshot),
                **figures,
            }
        ],
        columns=list(PERFORMANCE_COLUMNS),
    )
    return dg.Output(
        row,
        metadata={
            **table_metadata(row),
            **{name: dg.MetadataValue.float(value) for name, value in figures.items()},
            "model_version": dg.MetadataValue.text(str(version.version)),
            "scored_rows": dg.MetadataValue.int(len(raw_snapshot)),
        },
    )


@dg.asset(
    **COMMON,
    kinds={"matplotlib", "png"},
    code_version="1",
    pool=DUCKDB_POOL,
    ins={
        "realized_performance": dg.AssetIn(
            key=key(SYSTEM, "realized_performance"), partition_mapping=dg.AllPartitionMapping()
        )
    },
    automation_condition=dg.AutomationCondition.eager(),
    check_specs=[
        check_spec(
            SYSTEM,
            "realized_performance_chart",
            PERFORMANCE_CHECK,
            "Warns when the latest week's realized AUC falls below the scored champion's "
            "validation AUC minus the configured tolerance",
        )
    ],
)
def realized_performance_chart(
    context: dg.AssetExecutionContext,
    realized_performance,
    object_store: ObjectStore,
    mlflow: MlflowRegistry,
    monitoring: MonitoringSettings,
):
    """Realized accuracy and AUC of the serving champion, one point per weekly file."""
    history = (
        realized_performance.dropna(subset=["accuracy"])
        .sort_values("snapshot")
        .rename(columns={"snapshot": "period", "rows": "labelled"})
        .reset_index(drop=True)
    )
    expected = realized = None
    if len(history):
        latest = history.iloc[-1]
        realized = float(latest["auc"])
        version = mlflow.client().get_model_version(MODEL_NAME, str(latest["model_version"]))
        expected = float((version.tags or {}).get(VALIDATION_AUC_TAG, "nan"))
    check = performance_check("auc", realized, expected, monitoring)
    yield performance_output(
        context,
        object_store,
        SYSTEM,
        "realized_performance_chart",
        history,
        ["accuracy", "auc"],
        f"Pistachio: realized performance of {MODEL_NAME} per weekly file",
        check,
    )
    yield check


@dg.asset(
    **COMMON,
    kinds={"evidently", "html"},
    code_version="1",
    pool=DUCKDB_POOL,
    automation_condition=HOURLY,
    check_specs=[
        check_spec(
            SYSTEM,
            "input_drift",
            DRIFT_CHECK,
            "Warns when the share of drifted features reaches the configured threshold",
        )
    ],
)
def input_drift(
    context: dg.AssetExecutionContext,
    warehouse: Tables,
    object_store: ObjectStore,
    mlflow: MlflowRegistry,
    monitoring: MonitoringSettings,
):
    """Drift of the last week's kernels classified on `/classify` against the training rows of the champion's
    weekly file (Evidently, per feature); the HTML report is in the object store (metadata `report`)."""
    import pandas as pd

    champion = mlflow.version_by_alias(MODEL_NAME, CHAMPION)
    trained_on = (champion.tags or {}).get(TRAINING_DATAFILE_TAG) if champion is not None else None
    reference = pd.DataFrame(columns=list(FEATURES))
    if trained_on:
        reference = warehouse.query(
            f"SELECT {', '.join(FEATURES)} FROM {SYSTEM}.snapshot_splits WHERE snapshot = ? AND split = 'train'",
            [trained_on],
        )
    log = read_log(object_store, SYSTEM)
    log = log[log["route"] == CLASSIFY_ROUTE]
    current = parse_inputs(log).reindex(columns=list(FEATURES)).dropna().astype(float)
    result, check = drift_output(
        context,
        object_store,
        monitoring,
        SYSTEM,
        "input_drift",
        reference,
        current,
        numerical=list(FEATURES),
        champion_trained_on=dg.MetadataValue.text(trained_on or ""),
    )
    yield result
    yield check
