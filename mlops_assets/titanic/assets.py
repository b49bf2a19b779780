"""Titanic feature store and training: raw passengers → features → feature group → split → model."""

import datetime as dt
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common.constants import DAGSTER_RUN_TAG, DUCKDB_POOL, PROMOTION_POOL
from mlops_assets.common.keys import key, placement
from mlops_assets.common.promotion import candidate_of_run
from mlops_assets.common.promotion import promotion_gate as gate
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
from mlops_assets.titanic.constants import (
    EXPERIMENT,
    FEATURES,
    LABEL,
    MODEL_NAME,
    MODEL_PARAMS,
    SYSTEM,
    TRAIN_CSV_PATH,
    TRAIN_CSV_SHA256,
    TRAIN_CSV_URL,
)
from mlops_assets.titanic.features import in_holdout, prepare_passengers, synthetic_passenger, upsert
from mlops_assets.titanic.partitions import daily_partitions
from resources.data_source import DatasetFile, DataSource
from resources.mlflow_registry import MlflowRegistry

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

COMMON = placement(SYSTEM)
TRAIN_CSV = DatasetFile(TRAIN_CSV_PATH, url=TRAIN_CSV_URL, sha256=TRAIN_CSV_SHA256)
# skops loads only reviewed types; forests need their tree storage, which we produce ourselves.
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]


@dg.asset(**COMMON, kinds={"python", "duckdb"}, code_version="1", pool=DUCKDB_POOL)
def raw_passengers(context: dg.AssetExecutionContext, data_source: DataSource):
    """Kaggle's Titanic `train.csv`: the 891 real passengers with their fate, exactly as published."""
    import pandas as pd

    fetched = data_source.fetch(TRAIN_CSV)
    frame = pd.read_csv(fetched.path)
    context.log.info("read %d passengers from %s (%s)", len(frame), fetched.path, fetched.origin)
    return dg.Output(frame, data_version=fetched.data_version, metadata={**fetched.metadata(), **table_metadata(frame)})


@dg.asset(**COMMON, kinds={"pandas", "duckdb"}, code_version="1", pool=DUCKDB_POOL)
def passenger_features(raw_passengers):
    """The real passengers as model features: missing ages → 29, ports → 'Q', sex/port codes, age and fare bands."""
    features = prepare_passengers(raw_passengers)
    return dg.Output(features, metadata={**table_metadata(features), "survival_rate": float(features[LABEL].mean())})


@dg.asset(
    **COMMON,
    kinds={"python", "duckdb"},
    code_version="1",
    pool=DUCKDB_POOL,
    partitions_def=daily_partitions,
    metadata={"partition_expr": "event_date"},
)
def daily_passenger(context: dg.AssetExecutionContext):
    """One synthetic passenger per day (half survivors), the same for a date however often it is rebuilt."""
    import pandas as pd

    day = dt.date.fromisoformat(context.partition_key)
    row = synthetic_passenger(day)
    frame = pd.DataFrame([{**row, "event_date": pd.Timestamp(day)}])
    return dg.Output(
        frame,
        metadata={
            **table_metadata(frame),
            "passenger_id": dg.MetadataValue.int(row["passenger_id"]),
            "survived": dg.MetadataValue.int(row[LABEL]),
        },
    )


@dg.asset(
    **COMMON,
    kinds={"pandas", "duckdb"},
    code_version="1",
    pool=DUCKDB_POOL,
    ins={"daily_passenger": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())},
)
def feature_group(passenger_features, daily_passenger):
    """The feature group `titanic_modal_2`: real and synthetic passengers, upserted on primary key passenger_id."""
    synthetic = daily_passenger.drop(columns=["event_date"], errors="ignore")
    group = upsert(passenger_features.assign(source="kaggle"), synthetic.assign(source="synthetic"))
    return dg.Output(
        group,
        metadata={
            **table_metadata(group),
            "synthetic_rows": dg.MetadataValue.int(int((group["source"] == "synthetic").sum())),
            "survival_rate": float(group[LABEL].mean()),
        },
    )


@dg.asset(**COMMON, kinds={"pandas", "duckdb"}, code_version="1", pool=DUCKDB_POOL)
def training_split(feature_group):
    """The feature group with a stable 80/20 split: each passenger's side is fixed by a hash of its id."""
    split = feature_group.assign(split=in_holdout(feature_group["passenger_id"]).map({True: "holdout", False: "train"}))
    counts = split["split"].value_counts()
    return dg.Output(
        split,
        metadata={
            **table_metadata(split),
            "train_rows": dg.MetadataValue.int(int(counts.get("train", 0))),
            "holdout_rows": dg.MetadataValue.int(int(counts.get("holdout", 0))),
        },
    )


def train_survival_model(split: "pd.DataFrame") -> "RandomForestClassifier":
    from sklearn.ensemble import RandomForestClassifier

    train = split[split["split"] == "train"]
    return RandomForestClassifier(**MODEL_PARAMS).fit(train[FEATURES], train[LABEL])


def holdout_accuracy(model, split: "pd.DataFrame", source: str | None = None) -> float:
    from sklearn.metrics import accuracy_score

    holdout = split[split["split"] == "holdout"]
    if source is not None:
        holdout = holdout[holdout["source"] == source]
    return float(accuracy_score(holdout[LABEL], model.predict(holdout[FEATURES])))


MODEL_KEY = key(SYSTEM, "survival_model")


@dg.asset(**COMMON, kinds={"scikit-learn", "mlflow"}, code_version="1")
def survival_model(context: dg.AssetExecutionContext, training_split, mlflow: MlflowRegistry) -> dg.MaterializeResult:
    """The survival classifier (RandomForest, the original's hyper-parameters), registered as `titanic_modal`.

    The model sees only the five passenger features, never the id. Each materialization trains on the train side,
    scores the holdout, logs the run to MLflow and registers a new version, unless a version trained from the
    same code, hyper-parameters and split is registered already: then that version is re-emitted, untrained.
    The promotion gate decides whether the version becomes the served `champion`.
    """
    train = training_split[training_split["split"] == "train"]
    training_fingerprint = fingerprint(
        asset_code_version(context),
        {**MODEL_PARAMS, "features": FEATURES},
        {"training_split": content_version(training_split)},
    )
    existing = registered_version(mlflow, MODEL_NAME, training_fingerprint)
    if existing is not None:
        context.log.info("%s v%s was trained from identical inputs: %s", MODEL_NAME, existing.version, SKIPPED)
        return skipped_result(
            mlflow,
            MODEL_NAME,
            existing,
            training_fingerprint,
            {
                "holdout_rows": dg.MetadataValue.int(int((training_split["split"] == "holdout").sum())),
                "train_rows": dg.MetadataValue.int(len(train)),
            },
        )
    model = train_survival_model(training_split)
    accuracy = holdout_accuracy(model, training_split)
    # Synthetic passengers follow the original's odd rules; the real-passenger figure is the comparable one.
    kaggle_accuracy = holdout_accuracy(model, training_split, source="kaggle")
    with mlflow.start_run(
        EXPERIMENT, run_name=f"train-{run_id_of(context)[:8]}", tags={DAGSTER_RUN_TAG: run_id_of(context)}
    ) as run:
        mlflow.activate().log_params({**MODEL_PARAMS, "features": ",".join(FEATURES), "train_rows": len(train)})
        mlflow.activate().log_metrics({"accuracy": accuracy, "kaggle_holdout_accuracy": kaggle_accuracy})
        info = mlflow.log_sklearn_model(
            model, input_example=train[FEATURES].head(3).astype("float64"), skops_trusted_types=TRUSTED_TYPES
        )
    version = mlflow.register(
        MODEL_NAME,
        info.model_uri,
        run.info.run_id,
        tags={
            DAGSTER_RUN_TAG: run_id_of(context),
            "accuracy": f"{accuracy:.6f}",
            FINGERPRINT_TAG: training_fingerprint,
        },
    )
    context.log.info("registered %s v%s, holdout accuracy %.4f", MODEL_NAME, version.version, accuracy)
    return dg.MaterializeResult(
        metadata={
            "accuracy": dg.MetadataValue.float(accuracy),
            "kaggle_holdout_accuracy": dg.MetadataValue.float(kaggle_accuracy),
            "training": dg.MetadataValue.text(TRAINED),
            "holdout_rows": dg.MetadataValue.int(int((training_split["split"] == "holdout").sum())),
            "model_version": dg.MetadataValue.text(str(version.version)),
            "mlflow_run_id": dg.MetadataValue.text(run.info.run_id),
            **mlflow.link_metadata(run.info.run_id, MODEL_NAME, version.version, run.info.experiment_id),
            "train_rows": dg.MetadataValue.int(len(train)),
            FINGERPRINT_TAG: dg.MetadataValue.text(training_fingerprint),
        },
        data_version=dg.DataVersion(training_fingerprint),
    )


@dg.asset_check(
    asset=MODEL_KEY,
    name="promotion_gate",
    blocking=True,
    pool=PROMOTION_POOL,
    additional_ins={"training_split": dg.AssetIn(key=key(SYSTEM, "training_split"))},
    description="Promote to champion only if not worse on the holdout",
)
def survival_model_gate(
    context: dg.AssetCheckExecutionContext, training_split, mlflow: MlflowRegistry
) -> dg.AssetCheckResult:
    candidate_version, accuracy = candidate_of_run(context, MODEL_KEY, "accuracy")
    return promotion_gate(context, mlflow, training_split, candidate_version, accuracy)


def promotion_gate(
    context, mlflow: MlflowRegistry, split: "pd.DataFrame", candidate_version: str, candidate_accuracy: float
) -> dg.AssetCheckResult:
    """The shared gate, with the current champion scored on the same holdout as the candidate."""
    return gate(
        context,
        mlflow,
        MODEL_NAME,
        "accuracy",
        candidate_version,
        candidate_accuracy,
        lambda champion: holdout_accuracy(mlflow.load_version(MODEL_NAME, champion.version), split),
    )
