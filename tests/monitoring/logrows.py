"""Rows of the inference log, in the shape the serving API writes them (docs/monitoring.md), for tests that read
the log without running the writer."""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from mlops_assets.common.log_format import arrow_schema

SCHEMA = arrow_schema()


def log_row(
    system: str,
    route: str,
    inputs: dict,
    output,
    logged_at: datetime | None = None,
    model_name: str | None = None,
    model_version: str | None = "1",
    prediction_id: str | None = None,
) -> dict:
    return {
        "prediction_id": prediction_id or uuid.uuid4().hex,
        "logged_at": logged_at or datetime.now(UTC),
        "system": system,
        "route": route,
        "model_name": model_name,
        "model_version": model_version,
        "inputs": json.dumps(inputs),
        "output": json.dumps(output),
    }


def write_log(store, system: str, rows: list[dict]) -> list[str]:
    """One Parquet file per UTC hour of `logged_at`, under `<system>/inference_log/hour=YYYY-MM-DD-HH/`."""
    keys = []
    by_hour: dict[str, list[dict]] = {}
    for row in rows:
        by_hour.setdefault(f"{row['logged_at']:%Y-%m-%d-%H}", []).append(row)
    for hour, part in by_hour.items():
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(part, schema=SCHEMA), sink)
        key = f"{system}/inference_log/hour={hour}/{uuid.uuid4().hex}.parquet"
        store.put_bytes(key, sink.getvalue())
        keys.append(key)
    return keys


@contextlib.contextmanager
def log_set_aside(store, system: str):
    """A package platform's log holds the answers its other tests were served; a monitoring scenario needs the
    rows it writes alone. The earlier files are set aside for the scenario and put back after it."""
    prefix = f"{system}/inference_log/"
    saved = {info.key: store.get_bytes(info.key) for info in store.list_objects(prefix)}
    for key in saved:
        store.delete(key)
    try:
        yield
    finally:
        for info in store.list_objects(prefix):
            store.delete(info.key)
        for key, data in saved.items():
            store.put_bytes(key, data)
