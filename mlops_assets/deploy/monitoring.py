"""Deploy monitoring: realized performance of every deployment from the true values users send back
(`POST /api/{deployment}/feedback`), joined with the logged answers: accuracy for a classifier, MAE for a
regressor, per day.

No drift asset here: a deployment is any fitted Pipeline uploaded without its training data, so there is no
reference to compare the logged inputs with.
"""

import io
import json
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common.keys import placement
from mlops_assets.common.monitoring import HOURLY, parse_outputs, read_log
from mlops_assets.common.performance import performance_output
from mlops_assets.deploy.constants import SYSTEM
from resources.object_store import ObjectStore

if TYPE_CHECKING:
    import pandas as pd

FEEDBACK_PREFIX = f"{SYSTEM}/feedback/"


def read_feedback(store: ObjectStore) -> "pd.DataFrame":
    import pandas as pd
    import pyarrow.parquet as pq

    frames = [
        pq.read_table(io.BytesIO(store.get_bytes(info.key))).to_pandas()
        for info in store.list_objects(FEEDBACK_PREFIX)
        if info.key.endswith(".parquet")
    ]
    if not frames:
        return pd.DataFrame(columns=["prediction_id", "deployment", "actual", "received_at"])
    # The latest word on a prediction counts: a corrected true value replaces the first one.
    return pd.concat(frames).sort_values("received_at").drop_duplicates("prediction_id", keep="last")


def predicted_value(output: dict):
    """The value a deploy answer carried (the queue's status document keeps it in `body`)."""
    for name in ("body", "prediction", "value"):
        if name in output and output[name] is not None:
            return output[name]
    return None


def is_label(value) -> bool:
    """A class label: text, a boolean or a whole number (the queue answers classes as floats, 1.0)."""
    return isinstance(value, (str, bool)) or (isinstance(value, (int, float)) and float(value).is_integer())


def joined(log: "pd.DataFrame", feedback: "pd.DataFrame") -> "pd.DataFrame":
    """One row per prediction with feedback: day, deployment, predicted and actual value."""
    import pandas as pd

    if log.empty or feedback.empty:
        return pd.DataFrame(columns=["period", "deployment", "predicted", "actual"])
    outputs = parse_outputs(log)
    predicted = pd.DataFrame(
        {
            "prediction_id": log["prediction_id"],
            "predicted": [predicted_value(row.dropna().to_dict()) for _, row in outputs.iterrows()],
            "logged_at": pd.to_datetime(log["logged_at"], utc=True),
        }
    )
    rows = feedback.merge(predicted, on="prediction_id", how="inner")
    rows["actual"] = rows["actual"].map(json.loads)
    rows["period"] = rows["logged_at"].dt.strftime("%Y-%m-%d")
    return rows[["period", "deployment", "predicted", "actual"]].dropna()


def daily_figures(rows: "pd.DataFrame") -> "tuple[pd.DataFrame, list[str]]":
    """Per day, one column per deployment: `<name> accuracy` for labels, `<name> MAE` for numbers."""
    import pandas as pd

    history = (
        pd.DataFrame({"period": sorted(rows["period"].unique())}) if len(rows) else pd.DataFrame(columns=["period"])
    )
    metrics = []
    for deployment, part in rows.groupby("deployment"):
        classifier = all(map(is_label, part["predicted"])) and all(map(is_label, part["actual"]))
        if classifier:
            metric = f"{deployment} accuracy"
            values = (
                part.assign(
                    v=[
                        str(p) == str(a) or (not isinstance(p, str) and not isinstance(a, str) and float(p) == float(a))
                        for p, a in zip(part["predicted"], part["actual"], strict=False)
                    ]
                )
                .groupby("period")["v"]
                .mean()
            )
        else:
            metric = f"{deployment} MAE"
            errors = (part["predicted"].astype(float) - part["actual"].astype(float)).abs()
            values = part.assign(v=errors).groupby("period")["v"].mean()
        history[metric] = history["period"].map(values.astype(float))
        metrics.append(metric)
    history["labelled"] = history["period"].map(rows.groupby("period").size()).fillna(0).astype(int)
    return history, metrics


@dg.asset(**placement(SYSTEM), kinds={"matplotlib", "png"}, code_version="1", automation_condition=HOURLY)
def realized_performance(context: dg.AssetExecutionContext, object_store: ObjectStore) -> dg.MaterializeResult:
    """Realized accuracy (classifiers) or MAE (regressors) of each deployment, per day of the answers, over the
    last week of logged answers that received feedback."""
    rows = joined(read_log(object_store, SYSTEM), read_feedback(object_store))
    history, metrics = daily_figures(rows)
    return performance_output(
        context,
        object_store,
        SYSTEM,
        "realized_performance",
        history,
        metrics,
        "Deploy: realized performance from feedback",
        None,
        feedback_rows=dg.MetadataValue.int(len(rows)),
    )
