"""Pistachio's first materialization: the original's three weekly files delivered and trained in date order."""

import dagster as dg

from mlops_assets.common.runs import execute
from mlops_assets.pistachio.assets import PISTACHIO_CSV
from mlops_assets.pistachio.automation import SENSOR, SNAPSHOT_FILES_JOB, TRAINING_JOB
from mlops_assets.pistachio.snapshot_files import derive_weekly_files, snapshot_object_key


def bootstrap(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """Deliver the weekly files one at a time and train on each as the sensor would (about a minute).

    One file at a time: the daemon's sensor, ticking meanwhile, never sees a delivered file without the run the
    bootstrap started for it (tagged with the file's version, which the sensor skips), so no week trains twice.
    """
    store = defs.resources["object_store"]
    weeks = derive_weekly_files(defs.resources["data_source"].fetch(PISTACHIO_CSV).path.read_bytes())
    sensor = defs.resolve_sensor_def(SENSOR)
    job = defs.resolve_job_def(TRAINING_JOB)
    for name, data in sorted(weeks.items()):
        store.put_bytes(snapshot_object_key(name.removesuffix(".csv")), data, "text/csv")
        with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
            result = sensor(context)
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        for request in result.run_requests:
            execute(job, instance, partition_key=request.partition_key, tags=request.tags)
    # Records the delivery asset; the files are already there, so it writes nothing and requests nothing.
    execute(defs.resolve_job_def(SNAPSHOT_FILES_JOB), instance)
