"""Pistachio classifier assets: weekly snapshot files -> validated table -> splits -> 96-run sweep -> registry."""

import hashlib
import json

import dagster as dg
import pandas as pd

from mlops_assets.common.constants import DAGSTER_RUN_TAG, DUCKDB_POOL
from mlops_assets.common.tables import table_metadata
from mlops_assets.pistachio.constants import (
    DATASET_RELATIVE_PATH,
    DATASET_URL,
    MODEL_FILE_KEY,
    MODEL_MANIFEST_KEY,
    MODEL_NAME,
    TRAINING_DATAFILE_TAG,
    VALIDATION_AUC_TAG,
)
from mlops_assets.pistachio.model_file import fetch_model_file
from mlops_assets.pistachio.partitions import snapshot_partitions
from mlops_assets.pistachio.snapshot_files import (
    SnapshotUnreadable,
    derive_weekly_files,
    read_snapshot,
    snapshot_object_key,
)
from mlops_assets.pistachio.sweep import SPLITS, SplitData, full_grid, results_frame, split_snapshot
from mlops_assets.pistachio.tracking import run_sweep
from resources import CHAMPION, DatasetFile, DataSource, MlflowRegistry, ObjectStore
from resources.mlflow_registry import model_uri

PREFIX = ["pistachio"]
GROUP = "pistachio"
SCHEMA_CHECK = "snapshot_schema"
SOURCE_ETAG = "source_etag"
PISTACHIO_CSV = DatasetFile(DATASET_RELATIVE_PATH, url=DATASET_URL)


@dg.asset(key_prefix=PREFIX, group_name=GROUP, kinds={"csv", "pandas"}, code_version="1")
def weekly_snapshot_files(data_source: DataSource, object_store: ObjectStore) -> dg.MaterializeResult:
    """The original's three weekly data deliveries (2023-07-10, -17, -24), rebuilt from the Kaggle copy.

    First 900 and first 1,300 rows with pandas' leading index column (as the original's files had), then all
    1,718 rows without it, written into the incoming prefix that the snapshot sensor watches. A file is only
    rewritten when its content differs, so re-running this does not look like a new delivery.
    """
    fetched = data_source.fetch(PISTACHIO_CSV)
    written, unchanged = [], []
    for name, data in derive_weekly_files(fetched.path.read_bytes()).items():
        key = snapshot_object_key(name.removesuffix(".csv"))
        if object_store.exists(key) and object_store.get_bytes(key) == data:
            unchanged.append(key)
            continue
        object_store.put_bytes(key, data, "text/csv")
        written.append(key)
    return dg.MaterializeResult(
        metadata={
            **fetched.metadata(),
            "written": dg.MetadataValue.json(written),
            "unchanged": dg.MetadataValue.json(unchanged),
        },
        data_version=fetched.data_version,
    )


@dg.asset(
    key_prefix=PREFIX,
    group_name=GROUP,
    kinds={"duckdb", "pandas"},
    code_version="1",
    partitions_def=snapshot_partitions,
    deps=[weekly_snapshot_files],
    pool=DUCKDB_POOL,
    metadata={"partition_expr": "snapshot"},
    check_specs=[
        dg.AssetCheckSpec(
            SCHEMA_CHECK,
            asset=[*PREFIX, "raw_snapshot"],
            blocking=True,
            description="Only the 16 features and a known class; every value numeric.",
        )
    ],
)
def raw_snapshot(context: dg.AssetExecutionContext, object_store: ObjectStore):
    """One weekly delivery as a table: 16 lower-case shape features and `class` (Kirmizi=0, Siit=1).

    The leading unnamed index column of the first two deliveries is dropped: the original trained on it,
    leaking row order into the model. Any other unexpected column, non-numeric value or unknown class fails
    the blocking schema check with the file, column and line, so no model is trained on that delivery.
    """
    snapshot = context.partition_key
    key = snapshot_object_key(snapshot)
    data = object_store.get_bytes(key)
    try:
        frame, report = read_snapshot(data, file=key)
    except SnapshotUnreadable as exc:
        raise dg.Failure(description=str(exc), metadata={"file": dg.MetadataValue.text(key)}) from None
    frame.insert(0, "snapshot", snapshot)
    counts = frame["class"].value_counts()
    yield dg.Output(
        frame,
        metadata={
            **table_metadata(frame),
            "kirmizi_rows": dg.MetadataValue.int(int(counts.get(0, 0))),
            "siit_rows": dg.MetadataValue.int(int(counts.get(1, 0))),
            "source_uri": dg.MetadataValue.text(object_store.uri(key)),
            # The sensor compares this with the file's current ETag (content MD5) to spot a re-delivered file.
            SOURCE_ETAG: dg.MetadataValue.text(hashlib.md5(data).hexdigest()),
            "dropped_index_column": dg.MetadataValue.text(report.dropped_index_column or "none"),
            "preview": dg.MetadataValue.md(frame.head(5).to_markdown(index=False)),
        },
    )
    yield dg.AssetCheckResult(
        check_name=SCHEMA_CHECK,
        passed=report.ok,
        description="; ".join(report.problems) if report.problems else f"{key}: schema as expected",
        metadata={
            "file": dg.MetadataValue.text(key),
            "unexpected_columns": dg.MetadataValue.json(report.unexpected_columns),
            "problems": dg.MetadataValue.json(report.problems),
            "dropped_index_column": dg.MetadataValue.text(report.dropped_index_column or "none"),
        },
    )


@dg.asset(
    key_prefix=PREFIX,
    group_name=GROUP,
    kinds={"duckdb", "scikit-learn"},
    code_version="1",
    partitions_def=snapshot_partitions,
    pool=DUCKDB_POOL,
    metadata={"partition_expr": "snapshot"},
)
def snapshot_splits(raw_snapshot: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """The delivery split 60/20/20 into train / validation / test with random_state=1, as the original did."""
    features = raw_snapshot.drop(columns=["snapshot"]).reset_index(drop=True)
    splits = split_snapshot(features)
    splits.insert(0, "snapshot", raw_snapshot["snapshot"].iloc[0])
    sizes = splits["split"].value_counts()
    return dg.Output(
        splits,
        metadata={
            **table_metadata(splits),
            **{f"{name}_rows": dg.MetadataValue.int(int(sizes.get(name, 0))) for name in SPLITS},
            "siit_share_train": dg.MetadataValue.float(float(splits.loc[splits["split"] == "train", "class"].mean())),
        },
    )


@dg.asset(
    key_prefix=PREFIX,
    group_name=GROUP,
    kinds={"mlflow", "scikit-learn", "duckdb"},
    code_version="1",
    partitions_def=snapshot_partitions,
    pool=DUCKDB_POOL,
    metadata={"partition_expr": "snapshot"},
)
def model_sweep(
    context: dg.AssetExecutionContext, snapshot_splits: pd.DataFrame, mlflow: MlflowRegistry
) -> dg.Output[pd.DataFrame]:
    """All 96 logistic-regression configurations of the original's grid, one nested MLflow run each.

    C [1,2,4,8] x max_iter [20..1000] x solver [lbfgs, liblinear, sag, saga] on DictVectorizer +
    LogisticRegression(random_state=1). val/test AUC on hard predictions (the original's metric) and on
    probabilities; convergence warnings are recorded per run. The best validation AUC wins; only its model is
    logged as an artifact. (The original's misplaced `return` trained only C=1: 24 runs.)
    """
    snapshot = context.partition_key
    outcome = run_sweep(mlflow, full_grid(), SplitData.from_frame(snapshot_splits), snapshot, context.run_id)
    table = results_frame(outcome.results, outcome.best, outcome.run_ids)
    table["model_uri"] = table["is_best"].map({True: outcome.model_uri, False: ""})
    table.insert(0, "snapshot", snapshot)
    best = outcome.best
    context.log.info(
        "sweep of %s: %d runs in %.1f s, best %s val AUC %.4f",
        snapshot,
        len(table),
        outcome.seconds,
        best.config.label,
        best.val_auc,
    )
    return dg.Output(
        table,
        metadata={
            "runs": dg.MetadataValue.int(len(table)),
            "sweep_seconds": dg.MetadataValue.float(outcome.seconds),
            "mlflow_logging_seconds": dg.MetadataValue.float(outcome.logging_seconds),
            "best_val_auc": dg.MetadataValue.float(best.val_auc),
            "best_test_auc": dg.MetadataValue.float(best.test_auc),
            "best_val_auc_proba": dg.MetadataValue.float(best.val_auc_proba),
            "best_config": dg.MetadataValue.text(best.config.label),
            "convergence_warnings": dg.MetadataValue.int(outcome.convergence_warnings),
            "mlflow_parent_run_id": dg.MetadataValue.text(outcome.parent_run_id),
            "mlflow_best_run_id": dg.MetadataValue.text(outcome.best_run_id),
            "mlflow_parent_run_url": dg.MetadataValue.url(mlflow.run_url(outcome.parent_run_id, outcome.experiment_id)),
            "top_runs": dg.MetadataValue.md(
                table.sort_values("val_auc", ascending=False)
                .head(8)[["C", "max_iter", "solver", "val_auc", "test_auc", "val_auc_proba", "converged"]]
                .to_markdown(index=False, floatfmt=".4f")
            ),
        },
    )


@dg.asset(key_prefix=PREFIX, group_name=GROUP, kinds={"mlflow"}, code_version="1", partitions_def=snapshot_partitions)
def registered_model(
    context: dg.AssetExecutionContext, model_sweep: pd.DataFrame, mlflow: MlflowRegistry
) -> dg.MaterializeResult:
    """The sweep's best run as a new version of `Pistachio_Classifier` in the MLflow registry.

    Tagged as the original did ("Validation AUC", "Training Datafile") plus the Dagster run that produced it.
    Whether it serves is decided by the promotion check, not here.
    """
    best = model_sweep[model_sweep["is_best"].astype(bool)].iloc[0]
    version = mlflow.register(
        MODEL_NAME,
        best["model_uri"],
        best["mlflow_run_id"],
        tags={
            VALIDATION_AUC_TAG: f"{best['val_auc']:.6f}",
            TRAINING_DATAFILE_TAG: context.partition_key,
            DAGSTER_RUN_TAG: context.run_id,
            "config": f"C={best['C']:g} max_iter={best['max_iter']} {best['solver']}",
        },
    )
    return dg.MaterializeResult(
        metadata={
            "model_name": dg.MetadataValue.text(MODEL_NAME),
            "model_version": dg.MetadataValue.text(str(version.version)),
            "val_auc": dg.MetadataValue.float(float(best["val_auc"])),
            "test_auc": dg.MetadataValue.float(float(best["test_auc"])),
            "mlflow_run_id": dg.MetadataValue.text(best["mlflow_run_id"]),
            **mlflow.link_metadata(best["mlflow_run_id"], MODEL_NAME, version.version),
            "training_datafile": dg.MetadataValue.text(context.partition_key),
        }
    )


@dg.asset(key_prefix=PREFIX, group_name=GROUP, kinds={"skops", "mlflow"}, code_version="1", deps=[registered_model])
def champion_model_file(object_store: ObjectStore, mlflow: MlflowRegistry) -> dg.MaterializeResult:
    """The current champion as one downloadable file with its SHA-256 (the original's model .bin, in skops).

    A JSON manifest beside it names the version, its validation AUC and the run that trained it.
    """
    champion = mlflow.version_by_alias(MODEL_NAME, CHAMPION)
    if champion is None:
        raise dg.Failure(description=f"{MODEL_NAME} has no '{CHAMPION}' alias yet: nothing to export")
    model_file = fetch_model_file(mlflow, model_uri(MODEL_NAME, champion.version))
    model_file.load()  # refuses a file with untrusted types before anyone downloads it
    tags = dict(champion.tags or {})
    manifest = {
        "model_name": MODEL_NAME,
        "version": str(champion.version),
        "alias": CHAMPION,
        "sha256": model_file.sha256,
        "bytes": len(model_file.data),
        "format": "skops",
        "validation_auc": tags.get(VALIDATION_AUC_TAG),
        "training_datafile": tags.get(TRAINING_DATAFILE_TAG),
        "mlflow_run_id": champion.run_id,
        "dagster_run_id": tags.get(DAGSTER_RUN_TAG),
    }
    uri = object_store.put_bytes(MODEL_FILE_KEY, model_file.data, "application/octet-stream")
    object_store.put_bytes(MODEL_MANIFEST_KEY, json.dumps(manifest, indent=2).encode(), "application/json")
    return dg.MaterializeResult(
        metadata={
            "uri": dg.MetadataValue.text(uri),
            "sha256": dg.MetadataValue.text(model_file.sha256),
            "bytes": dg.MetadataValue.int(len(model_file.data)),
            "model_version": dg.MetadataValue.text(str(champion.version)),
            "validation_auc": dg.MetadataValue.float(float(tags.get(VALIDATION_AUC_TAG, "nan"))),
            "training_datafile": dg.MetadataValue.text(tags.get(TRAINING_DATAFILE_TAG, "")),
        },
        data_version=dg.DataVersion(model_file.sha256[:16]),
    )
