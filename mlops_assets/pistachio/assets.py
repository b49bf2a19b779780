"""Pistachio classifier assets: weekly snapshot files -> validated table -> splits -> 96-run sweep -> registry."""

import hashlib
import json
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common.constants import DAGSTER_RUN_TAG, DUCKDB_POOL
from mlops_assets.common.keys import key, placement
from mlops_assets.common.runs import run_id_of
from mlops_assets.common.tables import table_metadata
from mlops_assets.common.training import (
    FINGERPRINT_TAG,
    SKIPPED,
    TRAINED,
    asset_code_version,
    content_version,
    fingerprint,
    registered_version,
    skipped_result,
)
from mlops_assets.pistachio.constants import (
    DATASET_RELATIVE_PATH,
    DATASET_URL,
    FEATURES,
    MODEL_FILE_KEY,
    MODEL_MANIFEST_KEY,
    MODEL_NAME,
    RANDOM_STATE,
    SYSTEM,
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
from mlops_assets.pistachio.tracking import recorded_sweep, run_sweep
from resources import CHAMPION, DatasetFile, DataSource, MlflowRegistry, ObjectStore
from resources.mlflow_registry import model_uri

if TYPE_CHECKING:
    import pandas as pd

# The gate's metric, named as in the sweep table and the check's metadata: validation AUC on hard predictions.
METRIC = "val_auc"
SCHEMA_CHECK = "snapshot_schema"
SOURCE_ETAG = "source_etag"
PISTACHIO_CSV = DatasetFile(DATASET_RELATIVE_PATH, url=DATASET_URL)


@dg.asset(**placement(SYSTEM), kinds={"csv", "pandas"}, code_version="1")
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
    **placement(SYSTEM),
    kinds={"duckdb", "pandas"},
    code_version="1",
    partitions_def=snapshot_partitions,
    deps=[weekly_snapshot_files],
    pool=DUCKDB_POOL,
    metadata={"partition_expr": "snapshot"},
    check_specs=[
        dg.AssetCheckSpec(
            SCHEMA_CHECK,
            asset=key(SYSTEM, "raw_snapshot"),
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
    **placement(SYSTEM),
    kinds={"duckdb", "scikit-learn"},
    code_version="1",
    partitions_def=snapshot_partitions,
    pool=DUCKDB_POOL,
    metadata={"partition_expr": "snapshot"},
)
def snapshot_splits(raw_snapshot):
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
    **placement(SYSTEM),
    kinds={"mlflow", "scikit-learn", "duckdb"},
    code_version="1",
    partitions_def=snapshot_partitions,
    pool=DUCKDB_POOL,
    metadata={"partition_expr": "snapshot"},
)
def model_sweep(context: dg.AssetExecutionContext, snapshot_splits, mlflow: MlflowRegistry):
    """All 96 logistic-regression configurations of the original's grid, one nested MLflow run each.

    C [1,2,4,8] x max_iter [20..1000] x solver [lbfgs, liblinear, sag, saga] on DictVectorizer +
    LogisticRegression(random_state=1). val/test AUC on hard predictions (the original's metric) and on
    probabilities; convergence warnings are recorded per run. The best validation AUC wins; only its model is
    logged as an artifact. (The original's misplaced `return` trained only C=1: 24 runs.)

    Skipped when a registered version was trained from the same code, grid and splits: the earlier sweep's
    table is read back from its MLflow runs and re-emitted, with the same data version, and nothing is fitted.
    """
    snapshot = context.partition_key
    grid = full_grid()
    training_fingerprint = fingerprint(
        asset_code_version(context),
        {"grid": [config.label for config in grid], "random_state": RANDOM_STATE, "features": FEATURES},
        {"snapshot_splits": content_version(snapshot_splits)},
    )
    existing = registered_version(mlflow, MODEL_NAME, training_fingerprint)
    if existing is not None:
        context.log.info("%s v%s was trained from identical inputs: %s", MODEL_NAME, existing.version, SKIPPED)
        table = recorded_sweep(mlflow, existing.run_id, existing.source)
        table.insert(0, "snapshot", snapshot)
        return dg.Output(
            table,
            metadata={
                **_sweep_summary(table),
                "training": dg.MetadataValue.text(SKIPPED),
                "model_version": dg.MetadataValue.text(str(existing.version)),
                FINGERPRINT_TAG: dg.MetadataValue.text(training_fingerprint),
            },
            data_version=dg.DataVersion(training_fingerprint),
        )
    outcome = run_sweep(
        mlflow,
        grid,
        SplitData.from_frame(snapshot_splits),
        snapshot,
        run_id_of(context),
        tags={FINGERPRINT_TAG: training_fingerprint},
    )
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
            **_sweep_summary(table),
            "training": dg.MetadataValue.text(TRAINED),
            "sweep_seconds": dg.MetadataValue.float(outcome.seconds),
            "mlflow_logging_seconds": dg.MetadataValue.float(outcome.logging_seconds),
            "convergence_warnings": dg.MetadataValue.int(outcome.convergence_warnings),
            "mlflow_parent_run_id": dg.MetadataValue.text(outcome.parent_run_id),
            "mlflow_parent_run_url": dg.MetadataValue.url(mlflow.run_url(outcome.parent_run_id, outcome.experiment_id)),
            FINGERPRINT_TAG: dg.MetadataValue.text(training_fingerprint),
        },
        data_version=dg.DataVersion(training_fingerprint),
    )


def _sweep_summary(table: "pd.DataFrame") -> dict[str, dg.MetadataValue]:
    best = table[table["is_best"].astype(bool)].iloc[0]
    return {
        **table_metadata(table),
        "runs": dg.MetadataValue.int(len(table)),
        "best_val_auc": dg.MetadataValue.float(float(best["val_auc"])),
        "best_test_auc": dg.MetadataValue.float(float(best["test_auc"])),
        "best_val_auc_proba": dg.MetadataValue.float(float(best["val_auc_proba"])),
        "best_config": dg.MetadataValue.text(f"C={best['C']:g} max_iter={best['max_iter']} {best['solver']}"),
        "mlflow_best_run_id": dg.MetadataValue.text(str(best["mlflow_run_id"])),
        "top_runs": dg.MetadataValue.md(
            table.sort_values("val_auc", ascending=False)
            .head(8)[["C", "max_iter", "solver", "val_auc", "test_auc", "val_auc_proba", "converged"]]
            .to_markdown(index=False, floatfmt=".4f")
        ),
    }


@dg.asset(**placement(SYSTEM), kinds={"mlflow"}, code_version="1", partitions_def=snapshot_partitions)
def registered_model(context: dg.AssetExecutionContext, model_sweep, mlflow: MlflowRegistry) -> dg.MaterializeResult:
    """The sweep's best run as a new version of `Pistachio_Classifier` in the MLflow registry.

    Tagged as the original did ("Validation AUC", "Training Datafile") plus the Dagster run that produced it and
    the sweep's training fingerprint; a sweep that was skipped re-emits the version it had registered.
    Whether it serves is decided by the promotion check, not here.
    """
    best = model_sweep[model_sweep["is_best"].astype(bool)].iloc[0]
    training_fingerprint = mlflow.client().get_run(best["mlflow_run_id"]).data.tags.get(FINGERPRINT_TAG)
    scores = {
        METRIC: dg.MetadataValue.float(float(best["val_auc"])),
        "test_auc": dg.MetadataValue.float(float(best["test_auc"])),
    }
    common = {
        "model_name": dg.MetadataValue.text(MODEL_NAME),
        "training_datafile": dg.MetadataValue.text(context.partition_key),
    }
    existing = training_fingerprint and registered_version(mlflow, MODEL_NAME, training_fingerprint)
    if existing:
        context.log.info("%s v%s was trained from identical inputs: %s", MODEL_NAME, existing.version, SKIPPED)
        return skipped_result(
            mlflow, MODEL_NAME, existing, training_fingerprint, {**scores, **common}, run_metrics=False
        )
    version = mlflow.register(
        MODEL_NAME,
        best["model_uri"],
        best["mlflow_run_id"],
        tags={
            VALIDATION_AUC_TAG: f"{best['val_auc']:.6f}",
            TRAINING_DATAFILE_TAG: context.partition_key,
            DAGSTER_RUN_TAG: run_id_of(context),
            "config": f"C={best['C']:g} max_iter={best['max_iter']} {best['solver']}",
            **({FINGERPRINT_TAG: training_fingerprint} if training_fingerprint else {}),
        },
    )
    return dg.MaterializeResult(
        metadata={
            **scores,
            **common,
            "training": dg.MetadataValue.text(TRAINED),
            "model_version": dg.MetadataValue.text(str(version.version)),
            "mlflow_run_id": dg.MetadataValue.text(best["mlflow_run_id"]),
            **mlflow.link_metadata(best["mlflow_run_id"], MODEL_NAME, version.version),
            **({FINGERPRINT_TAG: dg.MetadataValue.text(training_fingerprint)} if training_fingerprint else {}),
        },
        data_version=dg.DataVersion(training_fingerprint) if training_fingerprint else None,
    )


@dg.asset(**placement(SYSTEM), kinds={"skops", "mlflow"}, code_version="1", deps=[registered_model])
def champion_model_file(object_store: ObjectStore, mlflow: MlflowRegistry) -> dg.MaterializeResult:
    """The current champion as one downloadable file with its SHA-256 (the original's model .bin, in skops).

    A JSON manifest beside it names the version, its validation AUC (`val_auc`, on its own week's split) and the
    run that trained it.
    """
    champion = mlflow.version_by_alias(MODEL_NAME, CHAMPION)
    if champion is None:
        raise dg.Failure(description=f"{MODEL_NAME} has no '{CHAMPION}' alias yet: nothing to export")
    model_file = fetch_model_file(mlflow, model_uri(MODEL_NAME, champion.version))
    model_file.load()  # refuses a file with untrusted types before anyone downloads it
    tags = dict(champion.tags or {})
    val_auc = float(tags[VALIDATION_AUC_TAG]) if VALIDATION_AUC_TAG in tags else None
    manifest = {
        "model_name": MODEL_NAME,
        "version": str(champion.version),
        "alias": CHAMPION,
        "sha256": model_file.sha256,
        "bytes": len(model_file.data),
        "format": "skops",
        METRIC: val_auc,
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
            METRIC: dg.MetadataValue.float(float("nan") if val_auc is None else val_auc),
            "training_datafile": dg.MetadataValue.text(tags.get(TRAINING_DATAFILE_TAG, "")),
        },
        data_version=dg.DataVersion(model_file.sha256[:16]),
    )
