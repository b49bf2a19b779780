"""Resources shared by every system, selected by settings (local folder by default, S3 when configured)."""

from __future__ import annotations

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


def build_resources(settings: PlatformSettings) -> dict[str, Any]:
    """The resource dictionary of the code location. Asset code asks for these keys, never for an environment."""
    # Here, not at module top: the serving API imports this package and never opens the warehouse, so it need not
    # pay for pandas and the DuckDB I/O manager.
    from dagster_duckdb import DuckDBResource
    from dagster_duckdb_pandas import DuckDBPandasIOManager

    from mlops_assets.scones.classifier import SconesClassifier

    settings.home.mkdir(parents=True, exist_ok=True)
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    return {
        # Tables: one DuckDB file, one schema per system (the asset key prefix names the schema).
        "io_manager": DuckDBPandasIOManager(database=str(settings.duckdb_path)),
        "warehouse": DuckDBResource(database=str(settings.duckdb_path)),
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
