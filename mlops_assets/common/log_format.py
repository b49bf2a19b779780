"""The layout of the inference log and of the monitoring summaries in the object store: the contract between
the serving API that writes them and the assets and overview page that read them (docs/monitoring.md).

Dagster-free and light, so that serving can import it."""

from __future__ import annotations

from datetime import datetime

COLUMNS = (
    "prediction_id",
    "logged_at",
    "system",
    "route",
    "model_name",
    "model_version",
    "inputs",
    "output",
    "lineage",
)
SUMMARY_PREFIX = "monitoring"


def log_prefix(system: str) -> str:
    return f"{system}/inference_log/"


def hour_prefix(system: str, hour: datetime) -> str:
    """The folder of one UTC hour's files."""
    return f"{log_prefix(system)}hour={hour:%Y-%m-%d-%H}/"


def summary_prefix(system: str) -> str:
    return f"{SUMMARY_PREFIX}/{system}/"


def summary_key(system: str, asset: str, suffix: str = "json") -> str:
    """Where a monitoring asset leaves its latest figures (`json`) and chart (`png`) for the overview page."""
    return f"{summary_prefix(system)}{asset}.{suffix}"


def arrow_schema():
    """The Parquet schema of a log file: the id, the UTC time of the answer, the rest as strings (JSON for inputs,
    output and lineage)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("prediction_id", pa.string()),
            ("logged_at", pa.timestamp("us", tz="UTC")),
            *[(name, pa.string()) for name in COLUMNS[2:]],
        ]
    )
