"""Platform settings, read from the environment when a code location or the server starts.

Nothing here runs at import time: `PlatformSettings.from_env()` is called by `definitions()` and by the serving
app factory, so tests can point everything at temporary folders with environment variables alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _fraction(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number between 0 and 1, got {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")
    return value


EXECUTORS = ("in_process", "celery")


QUEUE_SCHEMES = ("postgresql+psycopg2://", "postgresql://", "postgres://")


def _queue_url(raw: str | None) -> str | None:
    url = (raw or "").strip()
    if not url:
        return None
    if not url.startswith(QUEUE_SCHEMES):
        raise ValueError(
            f"MLOPS_DEPLOY_QUEUE_URL must be empty (SQLite under MLOPS_HOME) or a postgresql+psycopg2:// URL, "
            f"got {url.partition('://')[0]!r}"
        )
    return url


@dataclass(frozen=True)
class PlatformSettings:
    """Where every piece of state lives.

    `home` holds all generated state of a local deployment (DuckDB warehouse, object store folder, MLflow
    database and artifacts, download cache, DAGSTER_HOME); it is ignored by git.
    """

    home: Path
    data_dir: Path | None
    object_store: str  # "local" or "s3"
    s3_bucket: str
    s3_prefix: str
    s3_endpoint_url: str | None
    s3_region: str
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    # MLflow's own S3 client reads its endpoint from MLFLOW_S3_ENDPOINT_URL only; derived from the platform's.
    mlflow_s3_endpoint_url: str | None
    duckdb_path: Path
    offline: bool
    mlflow_ui_url: str = "http://127.0.0.1:5000"  # where people open MLflow; links in metadata and lineage
    dagster_ui_url: str = "http://127.0.0.1:3000"  # where people open Dagster; links of the overview page
    # Monitoring (docs/monitoring.md): the drift check warns above this share of drifted features; a failed drift
    # or performance check requests retraining only when this is on.
    drift_share_threshold: float = 0.5
    performance_drop_tolerance: float = 0.1
    retrain_on_monitoring_failure: bool = False
    # The serving API that classifies Scones images for the inference runs; None: each run loads the champion.
    scones_endpoint_url: str | None = None
    # Step execution (team profile, docs/scale-out.md#celery): "in_process" runs every step of a run in its run
    # worker; "celery" sends each step to Celery workers (dagster-celery) through this broker and result backend.
    executor: str = "in_process"
    celery_broker: str = "redis://127.0.0.1:6379/0"
    celery_backend: str = "redis://127.0.0.1:6379/0"
    # Team profile, shared async prediction queue (serving/queue_backend.py): None keeps the SQLite file under
    # `home`; a postgresql+psycopg2:// URL puts deploy's queue in PostgreSQL for several API and consumer processes.
    deploy_queue_url: str | None = None
    # Tables (docs/scale-out.md): `duckdb`, one local file; `delta`, Delta Lake tables under `delta_root` (S3 in
    # the team profile), one folder (schema) per system, read by DuckDB through Arrow for SQL.
    table_format: str = "duckdb"
    delta_root: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PlatformSettings:
        env = os.environ if env is None else env
        home = Path(env.get("MLOPS_HOME") or ".mlops").resolve()
        data_dir = env.get("MLOPS_DATA_DIR")
        object_store = (env.get("MLOPS_OBJECT_STORE") or "local").strip().lower()
        if object_store not in {"local", "s3"}:
            raise ValueError(f"MLOPS_OBJECT_STORE must be 'local' or 's3', got {object_store!r}")
        s3_bucket = env.get("MLOPS_S3_BUCKET") or "mlops-platform"
        s3_endpoint_url = env.get("MLOPS_S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL") or None
        tracking_uri = env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
        if tracking_uri.startswith(("http://", "https://")):
            # A tracking server keeps artifacts where it was told (--artifacts-destination) and proxies them:
            # clients need no artifact-store credentials, and no run writes to one host's disk.
            default_artifacts = "mlflow-artifacts:/"
        elif object_store == "s3":
            default_artifacts = f"s3://{s3_bucket}/mlflow-artifacts"
        else:
            default_artifacts = (home / "mlartifacts").as_uri()
        executor = (env.get("MLOPS_EXECUTOR") or "in_process").strip().lower()
        if executor not in EXECUTORS:
            raise ValueError(f"MLOPS_EXECUTOR must be one of {', '.join(EXECUTORS)}, got {executor!r}")
        broker = (env.get("MLOPS_CELERY_BROKER") or "").strip() or "redis://127.0.0.1:6379/0"
        table_format = (env.get("MLOPS_TABLE_FORMAT") or "duckdb").strip().lower()
        if table_format not in {"duckdb", "delta"}:
            raise ValueError(f"MLOPS_TABLE_FORMAT must be 'duckdb' or 'delta', got {table_format!r}")
        s3_prefix = (env.get("MLOPS_S3_PREFIX") or "").strip("/")
        if object_store == "s3":
            default_delta_root = "/".join(["s3:/", s3_bucket, *([s3_prefix] if s3_prefix else []), "tables"])
        else:
            default_delta_root = str(home / "tables")
        return cls(
            home=home,
            data_dir=Path(data_dir).resolve() if data_dir else None,
            object_store=object_store,
            s3_bucket=s3_bucket,
            s3_prefix=s3_prefix,
            s3_endpoint_url=s3_endpoint_url,
            s3_region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1",
            mlflow_tracking_uri=tracking_uri,
            mlflow_artifact_root=env.get("MLOPS_MLFLOW_ARTIFACT_ROOT") or default_artifacts,
            mlflow_s3_endpoint_url=env.get("MLFLOW_S3_ENDPOINT_URL") or s3_endpoint_url,
            duckdb_path=Path(env.get("MLOPS_DUCKDB_PATH") or home / "warehouse.duckdb").resolve(),
            offline=_flag(env.get("MLOPS_OFFLINE")),
            mlflow_ui_url=(env.get("MLOPS_MLFLOW_UI_URL") or "http://127.0.0.1:5000").rstrip("/"),
            dagster_ui_url=(env.get("MLOPS_DAGSTER_UI_URL") or "http://127.0.0.1:3000").rstrip("/"),
            drift_share_threshold=_fraction(env, "MLOPS_DRIFT_SHARE_THRESHOLD", 0.5),
            performance_drop_tolerance=_fraction(env, "MLOPS_PERFORMANCE_DROP_TOLERANCE", 0.1),
            retrain_on_monitoring_failure=_flag(env.get("MLOPS_RETRAIN_ON_MONITORING_FAILURE")),
            scones_endpoint_url=(env.get("MLOPS_SCONES_ENDPOINT_URL") or "").strip().rstrip("/") or None,
            executor=executor,
            celery_broker=broker,
            celery_backend=(env.get("MLOPS_CELERY_BACKEND") or "").strip() or broker,
            deploy_queue_url=_queue_url(env.get("MLOPS_DEPLOY_QUEUE_URL")),
            table_format=table_format,
            delta_root=(env.get("MLOPS_DELTA_ROOT") or "").strip().rstrip("/") or default_delta_root,
        )

    @property
    def objects_dir(self) -> Path:
        return self.home / "objects"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster_home"
