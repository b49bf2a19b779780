"""The code location: every system found by `mlops_assets.systems`, composed with the shared resources.

This module only loads and applies the platform-wide policy once (resources selected by settings, in-process
steps); what a system materializes and when lives in its own package. Settings are read when the location
loads (not at import), so one environment variable switches storage.
"""

from __future__ import annotations

import warnings

import dagster as dg

from mlops_assets.common import inference_log
from mlops_assets.systems import system_definitions
from resources import build_resources
from resources.buckets import ensure_buckets
from resources.settings import PlatformSettings
from sensors import definitions as platform_sensors

# A raw asset returns its table through the IO manager and versions it by the source file's digest: that data
# version is what keeps downstream assets "not stale" when a re-run read the same file. `Output(data_version=)`
# is the only way to version an IO-managed output, and Dagster flags the parameter as beta on every call, once
# per materialization in every run's log. Exactly that warning is silenced; every other stays.
OUTPUT_DATA_VERSION_BETA = r"Parameter `data_version` of initializer `Output.__init__` is currently in beta"
warnings.filterwarnings("ignore", message=OUTPUT_DATA_VERSION_BETA, category=dg.BetaWarning)
# Dagster's own SensorDefinition.with_attributes passes `owners` (beta) when it binds resources to a sensor's jobs,
# so every code-location load warned about a parameter none of our sensors sets. Exactly that warning is silenced.
SENSOR_OWNERS_BETA = r"Parameter `owners` of initializer `SensorDefinition.__init__` is currently in beta"
warnings.filterwarnings("ignore", message=SENSOR_OWNERS_BETA, category=dg.BetaWarning)


def build_executor(settings: PlatformSettings) -> dg.ExecutorDefinition:
    """The executor of every job, chosen once here by MLOPS_EXECUTOR (docs/scale-out.md#celery)."""
    if settings.executor == "celery":
        # dagster-celery loads Celery and kombu: only in the team profile, not on every code location load.
        from dagster_celery import celery_executor

        # Each step is a Celery task that a worker process runs against the shared (PostgreSQL) instance. Pools
        # still hold: the run worker claims a step's pool slot from the instance before it sends the task.
        return celery_executor.configured(
            {"broker": settings.celery_broker, "backend": settings.celery_backend}, name="celery"
        )
    # Steps share one process: ~4 s cheaper per step here, and one process per run keeps DuckDB single-writer.
    return dg.in_process_executor


@dg.definitions
def defs() -> dg.Definitions:
    settings = PlatformSettings.from_env()
    # A missing bucket stops the location from loading, in one line, instead of every S3 step failing later.
    ensure_buckets(settings)
    platform = dg.Definitions(resources=build_resources(settings), executor=build_executor(settings))
    # Global policy, once: the hourly inference log of each system's served answers, and the platform's sensors
    # (sensors/): each system's automation-condition sensor and its retrain-on-monitoring-failure sensor.
    return dg.Definitions.merge(platform, *system_definitions(), inference_log.defs, platform_sensors())
