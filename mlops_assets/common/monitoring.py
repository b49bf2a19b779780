"""What every system's monitoring assets share: reading the inference log, the summary the overview page reads,
the checks' specs and the automation conditions.

The log is read from its Parquet files in the object store (layout in docs/monitoring.md), so a monitoring asset
works whether or not the hourly ingest into the warehouse has run yet.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common.keys import key
from mlops_assets.common.log_format import COLUMNS, log_prefix, summary_key
from mlops_assets.common.runs import run_id_of
from resources.object_store import ObjectStore

if TYPE_CHECKING:
    import pandas as pd

LOG_COLUMNS = [name for name in COLUMNS if name != "lineage"]
WINDOW_HOURS = 7 * 24  # drift and realized performance look at the last week of logged answers
HOUR_PART = re.compile(r"/hour=(\d{4}-\d{2}-\d{2}-\d{2})/")

DRIFT_CHECK = "drift_share_below_threshold"
PERFORMANCE_CHECK = "realized_performance_holds"

# Hourly, whatever the upstream: the log grows all the time and is not a Dagster asset the condition could watch.
HOURLY = dg.AutomationCondition.cron_tick_passed("0 * * * *") & ~dg.AutomationCondition.in_progress()


def file_hour(object_key: str) -> datetime | None:
    match = HOUR_PART.search("/" + object_key)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d-%H").replace(tzinfo=UTC)


def read_log(
    store: ObjectStore, system: str, since: datetime | None = None, window_hours: int = WINDOW_HOURS
) -> pd.DataFrame:
    """The logged answers of `system` from `since` (default: the last `window_hours`), oldest first."""
    import pandas as pd
    import pyarrow.parquet as pq

    since = since or datetime.now(UTC) - timedelta(hours=window_hours)
    first_hour = since.replace(minute=0, second=0, microsecond=0)
    frames = []
    for info in store.list_objects(log_prefix(system)):
        hour = file_hour(info.key)
        if not info.key.endswith(".parquet") or hour is None or hour < first_hour:
            continue
        frames.append(pq.read_table(io.BytesIO(store.get_bytes(info.key))).to_pandas())
    if not frames:
        return pd.DataFrame(columns=LOG_COLUMNS)
    log = pd.concat(frames, ignore_index=True)
    log = log[pd.to_datetime(log["logged_at"], utc=True) >= since]
    return log.sort_values("logged_at").reset_index(drop=True)


def parse_json_column(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """One column per key of the JSON objects in `column` (a scalar answer becomes the column `value`)."""
    import pandas as pd

    records = []
    for text in frame[column]:
        value = json.loads(text) if isinstance(text, str) and text else {}
        records.append(value if isinstance(value, dict) else {"value": value})
    return pd.DataFrame.from_records(records, index=frame.index)


def parse_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    return parse_json_column(frame, "inputs")


def parse_outputs(frame: pd.DataFrame) -> pd.DataFrame:
    return parse_json_column(frame, "output")


def check_spec(system: str, asset: str, name: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=key(system, asset), description=description)


def warn_result(name: str, passed: bool, description: str, **metadata) -> dg.AssetCheckResult:
    """A monitoring check never blocks: it warns, and the retrain sensor may act on it."""
    return dg.AssetCheckResult(
        check_name=name,
        passed=bool(passed),
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def write_summary(
    store: ObjectStore,
    context: dg.AssetExecutionContext,
    system: str,
    asset: str,
    figures: dict,
    charts: dict[str, str] | None = None,
    checks: list[dg.AssetCheckResult] = (),
    report_key: str | None = None,
    **extra,
) -> str:
    """The small JSON the overview page reads: one file per monitoring asset, so two assets never race."""
    document = {
        "system": system,
        "asset": asset,
        "materialized_at": datetime.now(UTC).isoformat(),
        "dagster_run_id": run_id_of(context),
        "figures": figures,
        "charts": charts or {},
        "report_key": report_key,
        "checks": [
            {"name": check.check_name, "passed": check.passed, "description": check.description} for check in checks
        ],
        **extra,
    }
    object_key = summary_key(system, asset)
    store.put_bytes(object_key, json.dumps(document, default=float).encode(), "application/json")
    return object_key
