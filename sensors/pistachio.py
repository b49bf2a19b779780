"""Pistachio automation: a new weekly file in the incoming prefix becomes a partition and a training run."""

import dagster as dg

from mlops_assets.pistachio.assets import (
    SOURCE_ETAG, champion_model_file, model_sweep, raw_snapshot, registered_model, snapshot_splits,
    weekly_snapshot_files,
)
from mlops_assets.pistachio.constants import INCOMING_PREFIX
from mlops_assets.pistachio.partitions import snapshot_partitions
from mlops_assets.pistachio.snapshot_files import partition_key_for
from resources import ObjectStore

TRAINING_JOB = "pistachio_training_job"
SNAPSHOT_FILES_JOB = "pistachio_snapshot_files_job"
SENSOR = "pistachio_snapshot_sensor"

pistachio_training_job = dg.define_asset_job(
    TRAINING_JOB,
    selection=dg.AssetSelection.assets(raw_snapshot, snapshot_splits, model_sweep, registered_model,
                                       champion_model_file),
    partitions_def=snapshot_partitions,
    description="One weekly snapshot: validate, split, sweep 96 configurations, register, promote, export.",
)

pistachio_snapshot_files_job = dg.define_asset_job(
    SNAPSHOT_FILES_JOB, selection=dg.AssetSelection.assets(weekly_snapshot_files),
    description="Re-deliver the original's three weekly files into the incoming prefix.",
)


IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]


def _pistachio_run_in_flight(instance: dg.DagsterInstance) -> bool:
    return any(instance.get_run_records(dg.RunsFilter(job_name=job, statuses=IN_FLIGHT), limit=1)
               for job in (TRAINING_JOB, SNAPSHOT_FILES_JOB))


def _materialized_etag(instance: dg.DagsterInstance, partition_key: str) -> str | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=raw_snapshot.key, asset_partitions=[partition_key]), limit=1,
    ).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get(SOURCE_ETAG)
    return None if value is None else str(value.value)


# Below the daemon's own loop (a sensor is evaluated at most every ~5 s), so that every loop evaluates it: a new
# weekly file should reach a served champion within 30 s, and a tick is a listing and a few instance queries.
@dg.sensor(job=pistachio_training_job, name=SENSOR, minimum_interval_seconds=3,
           default_status=dg.DefaultSensorStatus.RUNNING)
def pistachio_snapshot_sensor(context: dg.SensorEvaluationContext, object_store: ObjectStore) -> dg.SensorResult:
    """Adds a partition for each new `pistachio/incoming/<name>.csv` and requests its training run.

    A file whose content changed since its partition was last materialized (a re-delivery) is trained
    again; run keys (key@etag) make sure one version of a file is never requested twice. While a Pistachio
    run is in flight (e.g. the bootstrap's) the tick waits, so weeks are trained and promoted one at a time.
    """
    if _pistachio_run_in_flight(context.instance):
        return dg.SensorResult(skip_reason="a Pistachio run is in progress; new files are picked up after it")
    known = set(context.instance.get_dynamic_partitions(snapshot_partitions.name))
    new_keys: list[str] = []
    requests: list[dg.RunRequest] = []
    for info in sorted(object_store.list_objects(INCOMING_PREFIX + "/"), key=lambda info: info.key):
        partition_key = partition_key_for(info.key)
        if partition_key is None:
            continue
        if partition_key not in known:
            new_keys.append(partition_key)
        elif _materialized_etag(context.instance, partition_key) == info.etag:
            continue
        requests.append(dg.RunRequest(run_key=info.version_token, partition_key=partition_key,
                                      tags={"pistachio/source_key": info.key, "pistachio/source_etag": info.etag}))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[snapshot_partitions.build_add_request(new_keys)] if new_keys else [],
    )


def bootstrap(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """Deliver the three weekly files and train on each in date order, as the sensor would (about a minute)."""
    defs.resolve_job_def(SNAPSHOT_FILES_JOB).execute_in_process(instance=instance)
    sensor = defs.resolve_sensor_def(SENSOR)
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
        result = sensor(context)
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    job = defs.resolve_job_def(TRAINING_JOB)
    for request in result.run_requests:
        job.execute_in_process(instance=instance, partition_key=request.partition_key, tags=request.tags)


defs = dg.Definitions(jobs=[pistachio_training_job, pistachio_snapshot_files_job],
                      sensors=[pistachio_snapshot_sensor])
