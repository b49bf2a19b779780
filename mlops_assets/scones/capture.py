"""The capture table: every inference of the workflow, passed or failed, with what is needed to audit it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mlops_assets.scones.constants import CAPTURE_TABLE
from mlops_assets.scones.workflow import Verdict

if TYPE_CHECKING:
    import pyarrow as pa

    from resources.tables import Tables

CAPTURE_COLUMNS = (
    "captured_at",
    "landed_at",
    "s3_bucket",
    "s3_key",
    "etag",
    "p_bicycle",
    "p_motorcycle",
    "predicted_class",
    "max_confidence",
    "threshold",
    "verdict",
    "detail",
    "model_name",
    "model_version",
    "dagster_run_id",
)


@dataclass(frozen=True)
class Capture:
    captured_at: datetime
    landed_at: datetime | None
    s3_bucket: str
    s3_key: str
    etag: str | None
    verdict: Verdict
    threshold: float
    model_name: str | None
    model_version: str | None
    dagster_run_id: str | None

    def values(self) -> tuple:
        v = self.verdict
        return (
            self.captured_at,
            self.landed_at,
            self.s3_bucket,
            self.s3_key,
            self.etag,
            v.p_bicycle,
            v.p_motorcycle,
            v.predicted_class,
            v.max_confidence,
            self.threshold,
            v.verdict,
            v.detail,
            self.model_name,
            self.model_version,
            self.dagster_run_id,
        )


def capture_schema() -> pa.Schema:
    import pyarrow as pa

    when = pa.timestamp("us", tz="UTC")
    types = {"captured_at": when, "landed_at": when, "p_bicycle": pa.float64(), "p_motorcycle": pa.float64()}
    types |= {"max_confidence": pa.float64(), "threshold": pa.float64()}
    return pa.schema([(name, types.get(name, pa.string())) for name in CAPTURE_COLUMNS])


def ensure_capture_table(tables: Tables) -> None:
    tables.ensure(CAPTURE_TABLE, capture_schema())


def record(tables: Tables, capture: Capture) -> None:
    record_many(tables, [capture])


def record_many(tables: Tables, captures: list[Capture]) -> None:
    """All rows in one transaction (one Delta commit): a batch is captured whole or not at all."""
    import pyarrow as pa

    if not captures:
        return
    rows = [capture.values() for capture in captures]
    schema = capture_schema()
    tables.append(
        CAPTURE_TABLE, pa.Table.from_pylist([dict(zip(schema.names, row, strict=True)) for row in rows], schema)
    )


def captured_versions(tables: Tables, keys: list[str]) -> dict[tuple[str, str], str]:
    """(s3_key, etag) → run id, for the versions of these keys that already have a capture row."""
    if not keys:
        return {}
    ensure_capture_table(tables)
    rows = tables.query(
        f"SELECT s3_key, etag, dagster_run_id FROM {CAPTURE_TABLE} WHERE etag IS NOT NULL AND list_contains(?, s3_key)",
        [list(keys)],
    )
    return {(key, etag): run_id for key, etag, run_id in rows.itertuples(index=False)}
