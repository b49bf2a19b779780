"""The `inference_log` asset of every system: one hourly partition per UTC hour of served predictions.

The serving API writes append-only Parquet files under `<system>/inference_log/hour=YYYY-MM-DD-HH/`
(serving/inference_log.py). Partition H reads that hour's files into the warehouse table `<system>.inference_log`,
replacing the hour's rows in one transaction (resources/tables.py, DuckDB or Delta), so materializing an hour again
replaces it.
Titanic's daily batch predictions and Scones' workflow captures are the same kind of record: the rows they wrote
during hour H join partition H (route `batch` and `event`) with deterministic ids, so the table is the one place
that holds every prediction of a system.

Each partition is materialized by an automation condition a few minutes after its hour ends (late buffers of the
serving processes have been flushed by then), evaluated by the `inference_log_automation` condition sensor.
"""

import io
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common import log_format
from mlops_assets.common.constants import DUCKDB_POOL
from mlops_assets.common.keys import key
from mlops_assets.common.log_format import hour_prefix
from mlops_assets.common.monitoring import parse_inputs  # noqa: F401  (the log's reader helper, one copy)
from mlops_assets.common.tables import table_metadata
from mlops_assets.systems import system_names
from resources.object_store import ObjectStore
from resources.tables import Tables

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = list(log_format.COLUMNS)
HOURLY = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00", timezone="UTC")
# Minute 5 of every hour: the hour that just ended (the latest partition) is ingested once its files are complete.
AUTOMATION = dg.AutomationCondition.on_cron("5 * * * *")
# Ids of batch and event rows: derived from what identifies the row, so re-ingesting gives the same ids.
ROW_NAMESPACE = uuid.UUID("6f0b7c2e-3d59-4c1e-9a51-2b1f2f6f1a16")

ExtraRows = Callable[[object, datetime, datetime], list[dict]]


def read_hour(store: ObjectStore, system: str, start: datetime) -> "tuple[pd.DataFrame, int]":
    """Every row the serving processes wrote for the hour starting at `start`, and how many files held them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = log_format.arrow_schema()
    tables = []
    for info in store.list_objects(hour_prefix(system, start)):
        if info.key.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(store.get_bytes(info.key)))
            # Files of an older writer may lack a later column: the contract's columns, nulls where absent.
            tables.append(
                pa.table(
                    {name: table[name] if name in table.column_names else pa.nulls(len(table)) for name in schema.names}
                ).cast(schema)
            )
    frame = pa.concat_tables(tables or [schema.empty_table()]).to_pandas()
    return frame, len(tables)


def _arrow(frame: "pd.DataFrame"):
    import pyarrow as pa

    return pa.Table.from_pandas(frame, schema=log_format.arrow_schema(), preserve_index=False)


def row_id(*parts: object) -> str:
    return uuid.uuid5(ROW_NAMESPACE, "/".join(map(str, parts))).hex


def titanic_batch_rows(tables: Tables, start: datetime, end: datetime) -> list[dict]:
    """The daily batch predictions made in the hour (route `batch`), with the passenger's features as inputs."""
    import pandas as pd

    from mlops_assets.titanic.constants import FEATURES

    if not tables.exists("titanic.batch_prediction"):
        return []
    features = (
        ", ".join(f"f.{name}" for name in FEATURES)
        if tables.exists("titanic.feature_group")
        else ", ".join(f"NULL AS {name}" for name in FEATURES)
    )
    join = "LEFT JOIN titanic.feature_group f USING (passenger_id)" if "f." in features else ""
    # predicted_at is stored as naive UTC.
    frame = tables.query(
        f"SELECT b.event_date, b.predicted_at, b.passenger_id, b.prediction, b.model_name, b.model_version, "
        f"b.mlflow_run_id, {features} FROM titanic.batch_prediction b {join} "
        "WHERE b.predicted_at >= ? AND b.predicted_at < ?",
        [start.replace(tzinfo=None), end.replace(tzinfo=None)],
    )
    return [
        {
            "prediction_id": row_id("titanic", "batch", r.event_date.date(), r.passenger_id, r.predicted_at),
            "logged_at": pd.Timestamp(r.predicted_at, tz="UTC"),
            "system": "titanic",
            "route": "batch",
            "model_name": r.model_name,
            "model_version": r.model_version,
            "inputs": json.dumps(
                {name: None if pd.isna(getattr(r, name)) else int(getattr(r, name)) for name in FEATURES}
            ),
            "output": json.dumps(
                {
                    "prediction": int(r.prediction),
                    "passenger_id": int(r.passenger_id),
                    "event_date": str(r.event_date.date()),
                }
            ),
            "lineage": json.dumps({"mlflow_run_id": r.mlflow_run_id}),
        }
        for r in frame.itertuples(index=False)
    ]


def scones_event_rows(tables: Tables, start: datetime, end: datetime) -> list[dict]:
    """The event-driven workflow's captures of the hour (route `event`); the image itself stays in the store."""
    import pandas as pd

    from mlops_assets.scones.constants import CAPTURE_TABLE

    if not tables.exists(CAPTURE_TABLE):
        return []
    frame = tables.query(
        "SELECT captured_at, s3_bucket, s3_key, etag, p_bicycle, p_motorcycle, predicted_class, max_confidence, "
        f"threshold, verdict, detail, model_name, model_version, dagster_run_id FROM {CAPTURE_TABLE} "
        "WHERE captured_at >= ? AND captured_at < ?",
        [start, end],
    )
    number = lambda v: None if pd.isna(v) else float(v)
    return [
        {
            "prediction_id": row_id("scones", "event", r.s3_bucket, r.s3_key, r.etag, r.captured_at),
            "logged_at": pd.Timestamp(r.captured_at).tz_convert("UTC"),
            "system": "scones",
            "route": "event",
            "model_name": r.model_name,
            "model_version": r.model_version,
            "inputs": json.dumps({"s3_key": r.s3_key, "etag": r.etag}),
            "output": json.dumps(
                {
                    "inferences": [number(r.p_bicycle), number(r.p_motorcycle)],
                    "predicted_class": r.predicted_class,
                    "confidence": number(r.max_confidence),
                    "threshold": float(r.threshold),
                    "verdict": r.verdict,
                    "detail": r.detail,
                }
            ),
            "lineage": json.dumps({"dagster_run_id": r.dagster_run_id}),
        }
        for r in frame.itertuples(index=False)
    ]


EXTRA_ROWS: dict[str, ExtraRows] = {"titanic": titanic_batch_rows, "scones": scones_event_rows}


# Lets a system's job select its group without the log the platform adds to it (dg.AssetSelection.tag).
RECORD_TAG = "mlops/record"


def inference_log_asset(system: str, extra_rows: ExtraRows | None = None) -> dg.AssetsDefinition:
    joined = {
        "titanic": " Titanic's daily batch predictions of the hour join it (route `batch`).",
        "scones": " The Scones workflow's captures of the hour join it (route `event`).",
    }.get(system, "")

    @dg.asset(
        key=key(system, "inference_log"),
        group_name=system,
        partitions_def=HOURLY,
        kinds={"parquet", "duckdb"},
        tags={RECORD_TAG: "inference_log"},
        code_version="1",
        pool=DUCKDB_POOL,
        automation_condition=AUTOMATION,
        description=f"Every {system} prediction served in the hour: the API's log files of that hour "
        f"(`{system}/inference_log/hour=...`) in the warehouse.{joined}",
    )
    def inference_log(
        context: dg.AssetExecutionContext, object_store: ObjectStore, warehouse: Tables
    ) -> dg.MaterializeResult:
        import pandas as pd

        start, end = context.partition_time_window
        frame, files = read_hour(object_store, system, start)
        extra = extra_rows(warehouse, start, end) if extra_rows is not None else []
        if extra:
            rows = pd.DataFrame(extra, columns=COLUMNS)
            rows["logged_at"] = pd.to_datetime(rows["logged_at"], utc=True).astype(frame["logged_at"].dtype)
            frame = pd.concat([frame, rows], ignore_index=True) if len(frame) else rows
        # A deploy row can be logged twice when storing its outcome was retried: one row per id.
        frame = frame.drop_duplicates("prediction_id", keep="last").sort_values("logged_at", kind="stable")
        frame = frame.reset_index(drop=True)[COLUMNS]
        # The hour's rows replaced in one transaction (an empty hour still leaves a table for readers); the
        # partition is the hour of logged_at, compared in UTC.
        table = f"{system}.inference_log"
        warehouse.replace_rows(table, _arrow(frame), "logged_at", start, end)
        return dg.MaterializeResult(
            metadata={
                **table_metadata(frame),
                "files": dg.MetadataValue.int(files),
                "joined_rows": dg.MetadataValue.int(len(extra)),
                "source": dg.MetadataValue.path(object_store.uri(hour_prefix(system, start))),
                "dagster/relation_identifier": dg.MetadataValue.text(table),
            },
        )

    return inference_log


assets = [inference_log_asset(system, EXTRA_ROWS.get(system)) for system in system_names()]
# Evaluated by each system's automation sensor (mlops_assets/definitions.py): the assets are in the system's group.
defs = dg.Definitions(assets=assets)
