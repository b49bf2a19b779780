"""Resources shared by every system, selected by settings (local folder by default, S3 when configured)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resources.data_source import DatasetFile, DatasetUnavailable, DataSource, FetchedFile
from resources.mlflow_registry import CHALLENGER, CHAMPION, MlflowRegistry
from resources.monitoring import MonitoringSettings
from resources.object_store import LocalObjectStore, ObjectInfo, ObjectNotFound, ObjectStore, S3ObjectStore
from resources.settings import PlatformSettings

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "DataSource",
    "DatasetFile",
    "DatasetUnavailable",
    "FetchedFile",
    "LocalObjectStore",
    "MlflowRegistry",
    "MonitoringSettings",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "PlatformSettings",
    "S3ObjectStore",
    "build_monitoring",
    "build_object_store",
    "build_registry",
    "build_resources",
    "build_tables",
    "delta_storage_options",
]


def build_object_store(settings: PlatformSettings) -> ObjectStore:
    if settings.object_store == "s3":
        from dagster_aws.s3 import S3Resource  # boto3 and dagster-aws load in S3 mode only

        S3ObjectStore.model_rebuild()  # resolves the `s3: S3Resource` field with the name imported just above
        s3 = S3Resource(endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
        return S3ObjectStore(s3=s3, bucket=settings.s3_bucket, prefix=settings.s3_prefix)
    return LocalObjectStore(root=str(settings.objects_dir))


def build_registry(settings: PlatformSettings) -> MlflowRegistry:
    return MlflowRegistry(
        tracking_uri=settings.mlflow_tracking_uri,
        artifact_root=settings.mlflow_artifact_root,
        s3_endpoint_url=settings.mlflow_s3_endpoint_url,
        ui_url=settings.mlflow_ui_url,
    )


def build_monitoring(settings: PlatformSettings) -> MonitoringSettings:
    return MonitoringSettings(
        drift_share_threshold=settings.drift_share_threshold,
        performance_drop_tolerance=settings.performance_drop_tolerance,
        retrain_on_failure=settings.retrain_on_monitoring_failure,
        dagster_ui_url=settings.dagster_ui_url,
    )


def delta_storage_options(settings: PlatformSettings) -> dict[str, str]:
    """deltalake's options for an s3:// root: the platform's endpoint and region, plain HTTP for an http:// endpoint.

    Credentials stay in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, or the
    instance's role), which delta-rs reads itself: resource config is shown in Dagster's UI."""
    if not settings.delta_root.startswith("s3://"):
        return {}
    options = {"AWS_REGION": settings.s3_region}
    if settings.s3_endpoint_url:
        options["AWS_ENDPOINT_URL"] = settings.s3_endpoint_url
        if settings.s3_endpoint_url.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    return options


def build_tables(settings: PlatformSettings) -> dict[str, Any]:
    """The `io_manager` and the `warehouse` (resources/tables.py) of the configured table format."""
    if settings.table_format == "delta":
        from dagster_deltalake import LocalConfig, S3Config
        from dagster_deltalake.config import ClientConfig

        from resources.delta_io import PlatformDeltaIOManager
        from resources.tables import DeltaTables

        options = delta_storage_options(settings)
        storage, client = LocalConfig(), None
        if settings.delta_root.startswith("s3://"):
            storage = S3Config(endpoint=options.get("AWS_ENDPOINT_URL"), region=options["AWS_REGION"])
            client = ClientConfig(allow_http=True) if "AWS_ALLOW_HTTP" in options else None
        else:
            Path(settings.delta_root).mkdir(parents=True, exist_ok=True)
        return {
            # One folder per system under the root: the asset key prefix names it, as it names DuckDB's schemas.
            "io_manager": PlatformDeltaIOManager(
                root_uri=settings.delta_root, storage_options=storage, client_options=client
            ),
            "warehouse": DeltaTables(root=settings.delta_root, storage_options=options),
        }
    from resources.tables import DuckDBPandasTables, DuckDBTables

    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    return {
        # Tables: one DuckDB file, one schema per system (the asset key prefix names the schema).
        "io_manager": DuckDBPandasTables(database=str(settings.duckdb_path)),
        "warehouse": DuckDBTables(database=str(settings.duckdb_path)),
    }


def build_resources(settings: PlatformSettings) -> dict[str, Any]:
    """The resource dictionary of the code location. Asset code asks for these keys, never for an environment."""
    # Here, not at module top: the serving API imports this package and never opens the warehouse, so it need not
    # pay for pandas and the table format's I/O manager.
    from mlops_assets.scones.classifier import SconesClassifier

    settings.home.mkdir(parents=True, exist_ok=True)
    return {
        **build_tables(settings),
        "object_store": build_object_store(settings),
        "mlflow": build_registry(settings),
        "monitoring": build_monitoring(settings),
        "scones_classifier": SconesClassifier(endpoint_url=settings.scones_endpoint_url),
        "data_source": DataSource(
            local_dir=str(settings.data_dir) if settings.data_dir else None,
            cache_dir=str(settings.cache_dir),
            offline=settings.offline,
        ),
    }
