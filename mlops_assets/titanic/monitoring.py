"""Titanic monitoring: drift of the predictor's logged passengers against the training data, and the realized
accuracy of the daily batch predictions (and of logged answers about known passengers) as labels arrive."""

from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common.constants import DUCKDB_POOL
from mlops_assets.common.drift import drift_output
from mlops_assets.common.keys import key, placement
from mlops_assets.common.monitoring import (
    DRIFT_CHECK,
    HOURLY,
    PERFORMANCE_CHECK,
    check_spec,
    parse_inputs,
    parse_outputs,
    read_log,
)
from mlops_assets.common.performance import performance_check, performance_output
from mlops_assets.titanic.constants import (
    AGE_BANDS,
    EMBARKED_CODES,
    FARE_BANDS,
    FEATURES,
    LABEL,
    MODEL_NAME,
    PORT_NAMES,
    SEX_CODES,
    SYSTEM,
)
from resources.mlflow_registry import CHAMPION, MlflowRegistry
from resources.monitoring import MonitoringSettings
from resources.object_store import ObjectStore

if TYPE_CHECKING:
    import pandas as pd

COMMON = placement(SYSTEM)
PREDICT_ROUTE = "/titanic/predict"
ROLLING_DAYS = 7
CHECKS = [
    dg.AssetCheckKey(key(SYSTEM, "input_drift"), DRIFT_CHECK),
    dg.AssetCheckKey(key(SYSTEM, "realized_performance"), PERFORMANCE_CHECK),
]


def encode_form(row: dict) -> dict | None:
    """The predictor form's words in the training encoding (the same mapping the API applies)."""
    try:
        return {
            "pclass": int(row["pclass"]),
            "sex_encoded": SEX_CODES[row["sex"]],
            "embarked_encoded": EMBARKED_CODES[PORT_NAMES[row["port"]]],
            "age_encoded": AGE_BANDS.index(row["age_band"]),
            "fare_encoded": FARE_BANDS.index(row["fare_band"]),
        }
    except (KeyError, ValueError, TypeError):
        return None


def logged_features(log: "pd.DataFrame") -> "pd.DataFrame":
    """The encoded features of each logged predictor answer: from the answer's `features` when it has them,
    else encoded from the form's words, else the inputs themselves when already encoded."""
    import pandas as pd

    log = log[log["route"] == PREDICT_ROUTE]
    if log.empty:
        return pd.DataFrame(columns=FEATURES)
    inputs, outputs = parse_inputs(log), parse_outputs(log)
    rows = []
    for index in log.index:
        answer = outputs.loc[index].get("features") if "features" in outputs else None
        row = inputs.loc[index].dropna().to_dict()
        if isinstance(answer, dict) and set(FEATURES) <= set(answer):
            rows.append({name: answer[name] for name in FEATURES})
        elif set(FEATURES) <= set(row):
            rows.append({name: row[name] for name in FEATURES})
        elif (encoded := encode_form(row)) is not None:
            rows.append(encoded)
    return pd.DataFrame(rows, columns=FEATURES).astype("int64")


def upstream(*names: str) -> dict[str, dg.AssetIn]:
    return {name: dg.AssetIn(key=key(SYSTEM, name)) for name in names}


@dg.asset(
    **COMMON,
    kinds={"evidently", "html"},
    code_version="1",
    pool=DUCKDB_POOL,
    automation_condition=HOURLY,
    ins=upstream("training_split"),
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
    training_split,
    object_store: ObjectStore,
    monitoring: MonitoringSettings,
):
    """Drift of the last week's passengers asked about on `/titanic/predict` against the champion's training rows
    (Evidently, chi-square per encoded feature); the HTML report is in the object store (metadata `report`)."""
    reference = training_split[training_split["split"] == "train"][FEATURES]
    current = logged_features(read_log(object_store, SYSTEM))
    result, check = drift_output(
        context, object_store, monitoring, SYSTEM, "input_drift", reference, current, numerical=[], categorical=FEATURES
    )
    yield result
    yield check


def daily_accuracy(rows: "pd.DataFrame") -> "pd.DataFrame":
    """Per day: labelled predictions, that day's accuracy, the rolling 7-day and the cumulative accuracy."""
    import pandas as pd

    labelled = rows.dropna(subset=["label"])
    if labelled.empty:
        return pd.DataFrame(columns=["period", "labelled", "accuracy", "rolling_accuracy", "cumulative_accuracy"])
    labelled = labelled.assign(correct=(labelled["prediction"].astype(int) == labelled["label"].astype(int)))
    days = labelled.groupby(labelled["event_date"].dt.date)["correct"].agg(["sum", "count"]).sort_index()
    window = days.rolling(ROLLING_DAYS, min_periods=1).sum()
    totals = days.cumsum()
    return pd.DataFrame(
        {
            "period": [str(day) for day in days.index],
            "labelled": days["count"].to_numpy(),
            "accuracy": (days["sum"] / days["count"]).to_numpy(),
            "rolling_accuracy": (window["sum"] / window["count"]).to_numpy(),
            "cumulative_accuracy": (totals["sum"] / totals["count"]).to_numpy(),
        }
    )


def logged_known_passengers(log: "pd.DataFrame", feature_group: "pd.DataFrame") -> "pd.DataFrame":
    """Logged answers about a passenger of the feature group (batch predictions joining the log) with labels."""
    import pandas as pd

    if log.empty:
        return pd.DataFrame(columns=["event_date", "prediction", "label"])
    inputs, outputs = parse_inputs(log), parse_outputs(log)
    if "passenger_id" not in inputs:
        return pd.DataFrame(columns=["event_date", "prediction", "label"])
    predicted = outputs.get("prediction", outputs.get("survived"))
    rows = pd.DataFrame(
        {
            "event_date": pd.to_datetime(log["logged_at"], utc=True).dt.tz_localize(None),
            "passenger_id": pd.to_numeric(inputs["passenger_id"], errors="coerce"),
            "prediction": None if predicted is None else predicted.astype(float),
        }
    ).dropna()
    labels = feature_group[["passenger_id", LABEL]].rename(columns={LABEL: "label"})
    return rows.merge(labels, on="passenger_id", how="inner")[["event_date", "prediction", "label"]]


@dg.asset(
    **COMMON,
    kinds={"matplotlib", "png"},
    code_version="1",
    pool=DUCKDB_POOL,
    automation_condition=dg.AutomationCondition.eager(),
    ins=upstream("prediction_history", "feature_group"),
    check_specs=[
        check_spec(
            SYSTEM,
            "realized_performance",
            PERFORMANCE_CHECK,
            "Warns when the rolling accuracy falls below the champion's holdout accuracy "
            "minus the configured tolerance",
        )
    ],
)
def realized_performance(
    context: dg.AssetExecutionContext,
    prediction_history,
    feature_group,
    object_store: ObjectStore,
    mlflow: MlflowRegistry,
    monitoring: MonitoringSettings,
):
    """Accuracy of the champion's answers once the passengers' fates are known, per day (daily batch predictions,
    plus logged answers about passengers of the feature group, deduplicated by passenger and day)."""
    import pandas as pd

    batch = prediction_history[["event_date", "passenger_id", "prediction", "label"]]
    logged = logged_known_passengers(read_log(object_store, SYSTEM), feature_group)
    rows = pd.concat([batch.drop(columns="passenger_id"), logged], ignore_index=True)
    history = daily_accuracy(rows)
    champion = mlflow.version_by_alias(MODEL_NAME, CHAMPION)
    expected = float((champion.tags or {}).get("accuracy", "nan")) if champion is not None else None
    realized = float(history["rolling_accuracy"].iloc[-1]) if len(history) else None
    check = performance_check("rolling_accuracy", realized, expected, monitoring)
    yield performance_output(
        context,
        object_store,
        SYSTEM,
        "realized_performance",
        history,
        ["rolling_accuracy", "cumulative_accuracy"],
        f"Titanic: realized accuracy of {MODEL_NAME}",
        check,
        reference={"rolling_accuracy": expected} if expected is not None else None,
        logged_labelled=dg.MetadataValue.int(len(logged)),
    )
    yield check
