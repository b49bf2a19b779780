"""Batch inference and the dashboard: the newest passenger's predicted and actual fate, history, pictures."""

import datetime as dt
import json
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common.champion import ChampionLoader
from mlops_assets.common.constants import DUCKDB_POOL
from mlops_assets.common.images import image_metadata
from mlops_assets.common.keys import key, placement
from mlops_assets.common.tables import table_metadata
from mlops_assets.titanic.constants import (
    FEATURES,
    IMAGE_KEYS,
    LABEL,
    MODEL_NAME,
    RECENT_PREDICTIONS_KEY,
    RECENT_ROWS,
    SYSTEM,
)
from mlops_assets.titanic.partitions import daily_partitions
from mlops_assets.titanic.pictures import confusion_picture, fate_picture, table_picture
from resources.mlflow_registry import CHAMPION, MlflowRegistry
from resources.object_store import ObjectStore

if TYPE_CHECKING:
    import pandas as pd

COMMON = placement(SYSTEM)
ALL_DAYS = dg.AssetIn(key=key(SYSTEM, "batch_prediction"), partition_mapping=dg.AllPartitionMapping())
FATE_LABELS = ["did not survive", "survived"]
# The same loader serving uses: a run worker loads each champion version once, whatever the partitions it scores.
CHAMPIONS = ChampionLoader(MODEL_NAME)


class NoChampion(Exception):
    pass


@dg.asset(
    **COMMON,
    kinds={"scikit-learn", "duckdb"},
    code_version="1",
    pool=DUCKDB_POOL,
    partitions_def=daily_partitions,
    metadata={"partition_expr": "event_date"},
    deps=[key(SYSTEM, "survival_model")],
)
def batch_prediction(context: dg.AssetExecutionContext, daily_passenger, mlflow: MlflowRegistry):
    """The daily batch inference: the day's passenger scored by whichever version is champion now."""
    import pandas as pd

    loaded = CHAMPIONS.get(mlflow)
    if loaded is None:
        raise NoChampion(
            f"no '{CHAMPION}' version of {MODEL_NAME} in the registry yet: materialize titanic/survival_model first"
        )
    model, champion = loaded.model, loaded.version
    passenger = daily_passenger.iloc[[0]]
    prediction = int(model.predict(passenger[FEATURES])[0])
    row = pd.DataFrame(
        [
            {
                "event_date": pd.Timestamp(dt.date.fromisoformat(context.partition_key)),
                "predicted_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
                "passenger_id": int(passenger["passenger_id"].iloc[0]),
                "prediction": prediction,
                "model_name": MODEL_NAME,
                "model_version": str(champion.version),
                "mlflow_run_id": champion.run_id,
            }
        ]
    )
    return dg.Output(
        row,
        metadata={
            **table_metadata(row),
            "prediction": dg.MetadataValue.int(prediction),
            "passenger_id": dg.MetadataValue.int(int(row["passenger_id"].iloc[0])),
            "model_version": dg.MetadataValue.text(str(champion.version)),
        },
    )


def join_labels(predictions: "pd.DataFrame", group: "pd.DataFrame") -> "pd.DataFrame":
    labels = group[["passenger_id", LABEL]].rename(columns={LABEL: "label"})
    history = predictions.merge(labels, on="passenger_id", how="left")
    history["label"] = history["label"].astype("Int64")  # a label may arrive after its prediction
    return history.sort_values(["event_date", "predicted_at"]).reset_index(drop=True)


@dg.asset(**COMMON, kinds={"pandas", "duckdb"}, code_version="1", pool=DUCKDB_POOL, ins={"batch_prediction": ALL_DAYS})
def prediction_history(batch_prediction, feature_group):
    """Every daily prediction (time, passenger, prediction, model version) with the passenger's true fate."""
    history = join_labels(batch_prediction, feature_group)
    labelled = history.dropna(subset=["label"])
    accuracy = float((labelled["prediction"] == labelled["label"]).mean()) if len(labelled) else float("nan")
    return dg.Output(
        history, metadata={**table_metadata(history), "labelled_rows": len(labelled), "history_accuracy": accuracy}
    )


def latest(history: "pd.DataFrame") -> "pd.Series":
    if history.empty:
        raise ValueError("the prediction history is empty: materialize titanic/prediction_history first")
    return history.sort_values(["event_date", "predicted_at"]).iloc[-1]


def _store_image(context, store: ObjectStore, name: str, png: bytes, alt: str) -> dg.MaterializeResult:
    uri = store.put_bytes(IMAGE_KEYS[name], png, "image/png")
    context.log.info("wrote %s", uri)
    return dg.MaterializeResult(metadata=image_metadata(png, uri, alt))


@dg.asset(**COMMON, kinds={"matplotlib", "png"}, code_version="1")
def latest_passenger_image(
    context: dg.AssetExecutionContext, prediction_history, object_store: ObjectStore
) -> dg.MaterializeResult:
    """`latest_passenger.png`: the fate the model predicts for the newest passenger."""
    row = latest(prediction_history)
    png = fate_picture(
        row["prediction"], f"predicted for passenger {row['passenger_id']} (model v{row['model_version']})"
    )
    return _store_image(context, object_store, "latest_passenger", png, "predicted fate")


@dg.asset(**COMMON, kinds={"matplotlib", "png"}, code_version="1", output_required=False)
def actual_fate_image(context: dg.AssetExecutionContext, prediction_history, object_store: ObjectStore):
    """`actual_fate.png`: the true fate of the newest passenger, to compare with the prediction."""
    import pandas as pd

    row = latest(prediction_history)
    if pd.isna(row["label"]):
        context.log.info("the newest passenger's fate is not known yet")
        return
    png = fate_picture(int(row["label"]), f"actual fate of passenger {row['passenger_id']}")
    yield _store_image(context, object_store, "actual_fate", png, "actual fate")


def recent_rows(history: "pd.DataFrame") -> "pd.DataFrame":
    import pandas as pd

    recent = history.sort_values(["event_date", "predicted_at"]).tail(RECENT_ROWS).iloc[::-1]
    return pd.DataFrame(
        {
            "date": recent["event_date"].dt.strftime("%Y-%m-%d"),
            "passenger_id": recent["passenger_id"].astype(int),
            "prediction": recent["prediction"].map(lambda v: FATE_LABELS[int(v)]),
            "label": recent["label"].map(lambda v: "unknown yet" if pd.isna(v) else FATE_LABELS[int(v)]),
            "model_version": recent["model_version"].astype(str),
        }
    )


@dg.asset(**COMMON, kinds={"matplotlib", "png"}, code_version="1")
def recent_predictions_image(
    context: dg.AssetExecutionContext, prediction_history, object_store: ObjectStore
) -> dg.MaterializeResult:
    """`df_recent.png`: the last five predictions next to the true fates; also published as JSON for serving."""
    recent = recent_rows(prediction_history)
    object_store.put_bytes(
        RECENT_PREDICTIONS_KEY, json.dumps(recent.to_dict(orient="records")).encode(), "application/json"
    )
    png = table_picture(recent, "Recent predictions")
    result = _store_image(context, object_store, "df_recent", png, "recent predictions")
    return dg.MaterializeResult(metadata={**result.metadata, "dagster/row_count": dg.MetadataValue.int(len(recent))})


@dg.asset(**COMMON, kinds={"matplotlib", "png"}, code_version="1", output_required=False)
def confusion_matrix_image(context: dg.AssetExecutionContext, prediction_history, object_store: ObjectStore):
    """`confusion_matrix.png` of all predictions so far: drawn once both fates have been predicted."""
    import numpy as np
    from sklearn.metrics import confusion_matrix

    labelled = prediction_history.dropna(subset=["label"])
    if prediction_history["prediction"].nunique() < 2:
        context.log.info("only one fate predicted so far: the confusion matrix waits for both classes")
        return
    matrix = confusion_matrix(labelled["label"].astype(int), labelled["prediction"], labels=[0, 1])
    png = confusion_picture(matrix, FATE_LABELS, f"All {len(labelled)} labelled daily predictions")
    result = _store_image(context, object_store, "confusion_matrix", png, "confusion matrix")
    accuracy = float(np.trace(matrix) / matrix.sum())
    yield dg.MaterializeResult(
        metadata={
            **result.metadata,
            "history_accuracy": dg.MetadataValue.float(accuracy),
            "predictions": dg.MetadataValue.int(int(matrix.sum())),
        }
    )
