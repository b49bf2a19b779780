"""The capture table: every inference of the workflow, passed or failed, with what is needed to audit it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mlops_assets.scones.constants import CAPTURE_TABLE
from mlops_assets.scones.workflow import Verdict

CREATE_CAPTURE_TABLE = f"""
CREATE SCHEMA IF NOT EXISTS {CAPTURE_TABLE.split(".")[0]};
CREATE TABLE IF NOT EXISTS {CAPTURE_TABLE} (
    captured_at TIMESTAMPTZ NOT NULL,
    landed_at TIMESTAMPTZ,
    s3_bucket VARCHAR NOT NULL,
    s3_key VARCHAR NOT NULL,
    etag VARCHAR,
    p_bicycle DOUBLE,
    p_motorcycle DOUBLE,
    predicted_class VARCHAR,
    max_confidence DOUBLE,
    threshold DOUBLE NOT NULL,
    verdict VARCHAR NOT NULL,
    detail VARCHAR,
    model_name VARCHAR,
    model_version VARCHAR,
    dagster_run_id VARCHAR
);
"""

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


def ensure_capture_table(connection) -> None:
    connection.execute(CREATE_CAPTURE_TABLE)


def record(connection, capture: Capture) -> None:
    ensure_capture_table(connection)
    placeholders = ", ".join("?" for _ in CAPTURE_COLUMNS)
    connection.execute(
        f"INSERT INTO {CAPTURE_TABLE} ({', '.join(CAPTURE_COLUMNS)}) VALUES ({placeholders})", capture.values()
    )


def record_many(connection, captures: list[Capture]) -> None:
    """All rows in one transaction: a batch is captured whole or not at all."""
    if not captures:
        return
    ensure_capture_table(connection)
    placeholders = ", ".join("?" for _ in CAPTURE_COLUMNS)
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.executemany(
            f"INSERT INTO {CAPTURE_TABLE} ({', '.join(CAPTURE_COLUMNS)}) VALUES ({placeholders})",
            [capture.values() for capture in captures],
        )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def captured_versions(connection, keys: list[str]) -> dict[tuple[str, str], str]:
    """(s3_key, etag) → run id, for the versions of these keys that already have a capture row."""
    if not keys:
        return {}
    ensure_capture_table(connection)
    rows = connection.execute(
        f"SELECT s3_key, etag, dagster_run_id FROM {CAPTURE_TABLE} WHERE etag IS NOT NULL AND list_contains(?, s3_key)",
        [list(keys)],
    ).fetchall()
    return {(key, etag): run_id for key, etag, run_id in rows}
