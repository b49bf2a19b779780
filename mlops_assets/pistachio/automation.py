"""Pistachio automation: a new weekly file in the incoming prefix becomes a partition and a training run.

Weeks are trained and promoted one at a time: both jobs carry the `mlops/one_at_a_time: pistachio` tag, which
the instance's run coordinator limits to one run in progress (dagster.yaml), so a run requested while another
trains (the bootstrap's included) waits in the queue instead of the sensor re-checking the instance.
"""

import dagster as dg

from mlops_assets.common.runs import ONE_AT_A_TIME
from mlops_assets.pistachio.assets import (
    SOURCE_ETAG,
    champion_model_file,
    model_sweep,
    raw_snapshot,
    registered_model,
    snapshot_splits,
    weekly_snapshot_files,
)
from mlops_assets.pistachio.constants import INCOMING_PREFIX, SYSTEM
from mlops_assets.pistachio.partitions import snapshot_partitions
from mlops_assets.pistachio.snapshot_files import partition_key_for
from resources import ObjectStore

TRAINING_JOB = "pistachio_training_job"
SNAPSHOT_FILES_JOB = "pistachio_snapshot_files_job"
SENSOR = "pistachio_snapshot_sensor"
SOURCE_KEY_TAG = "pistachio/source_key"
SOURCE_ETAG_TAG = "pistachio/source_etag"
SERIAL = {ONE_AT_A_TIME: SYSTEM}

pistachio_training_job = dg.define_asset_job(
    TRAINING_JOB,
    selection=dg.AssetSelection.assets(
        raw_snapshot, snapshot_splits, model_sweep, registered_model, champion_model_file
    ),
    tags=SERIAL,
    description="One weekly snapshot: validate, split, sweep 96 configurations, register, promote, export.",
)

pistachio_snapshot_files_job = dg.define_asset_job(
    SNAPSHOT_FILES_JOB,
    selection=dg.AssetSelection.assets(weekly_snapshot_files),
    tags=SERIAL,
    description="Re-deliver the original's three weekly files into the incoming prefix.",
)


def _materialized_etag(instance: dg.DagsterInstance, partition_key: str) -> str | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=raw_snapshot.key, asset_partitions=[partition_key]),
        limit=1,
    ).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get(SOURCE_ETAG)
    return None if value is None else str(value.value)


def _requested_before(instance: dg.DagsterInstance, source_key: str, etag: str) -> bool:
    """A run for this version of the file exists, whatever its status: run keys say the same of the sensor's own
    requests, this also covers the runs the bootstrap executes in-process with the same tags."""
    tags = {SOURCE_KEY_TAG: source_key, SOURCE_ETAG_TAG: etag}
    return bool(instance.get_run_records(dg.RunsFilter(job_name=TRAINING_JOB, tags=tags), limit=1))


# Below the daemon's own loop (a sensor is evaluated at most every ~5 s), so that every loop evaluates it: a new
# weekly file should reach a served champion within 30 s, and a tick is a listing and a few instance queries.
@dg.sensor(
    job=pistachio_training_job, name=SENSOR, minimum_interval_seconds=3, default_status=dg.DefaultSensorStatus.RUNNING
)
def pistachio_snapshot_sensor(context: dg.SensorEvaluationContext, object_store: ObjectStore) -> dg.SensorResult:
    """Adds a partition for each new `pistachio/incoming/<name>.csv` and requests its training run.

    A file whose content changed since its partition was last materialized (a re-delivery) is trained
    again; run keys (key@etag) make sure one version of a file is never requested twice.
    """
    known = set(context.instance.get_dynamic_partitions(snapshot_partitions.name))
    new_keys: list[str] = []
    requests: list[dg.RunRequest] = []
    for info in sorted(object_store.list_objects(INCOMING_PREFIX + "/"), key=lambda info: info.key):
        partition_key = partition_key_for(info.key)
        if partition_key is None:
            continue
        if partition_key not in known:
            new_keys.append(partition_key)
        elif _materialized_etag(context.instance, partition_key) == info.etag or _requested_before(
            context.instance, info.key, info.etag
        ):
            continue
        requests.append(
            dg.RunRequest(
                run_key=info.version_token,
                partition_key=partition_key,
                tags={SOURCE_KEY_TAG: info.key, SOURCE_ETAG_TAG: info.etag},
            )
        )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[snapshot_partitions.build_add_request(new_keys)] if new_keys else [],
    )


defs = dg.Definitions(jobs=[pistachio_training_job, pistachio_snapshot_files_job], sensors=[pistachio_snapshot_sensor])
