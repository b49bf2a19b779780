"""Deploy automation: one sensor turns the deployments in the object store into partitions and releases.

`mlops deploy`, `mlops pin` and `mlops undeploy` only write the object store (the CLI needs no Dagster); each
tick this sensor adds a partition per new deployment, deletes the partitions of removed ones, and requests a
release (check + publish) of every deployment whose config, pin or followed registry alias moved since the last
release it requested or that is published.
"""

import json

import dagster as dg

from mlops_assets.deploy.assets import (
    DEMO_MODEL_FILES,
    DEPLOYMENT_KEY,
    PINNED_MODEL_KEY,
    deployment_partitions,
    release_token,
)
from mlops_assets.deploy.models import ModelRefused, read_pin, resolve_registry_pin
from mlops_assets.deploy.records import MLFLOW, DeploymentRecord, list_records
from resources.mlflow_registry import MlflowRegistry
from resources.object_store import ObjectStore

deploy_demo_job = dg.define_asset_job(
    "deploy_demo_job",
    selection=dg.AssetSelection.assets(*DEMO_MODEL_FILES.values()),
    description="Train and upload the two demo models; the first time, create their deployments.",
)

deploy_release_job = dg.define_asset_job(
    "deploy_release_job",
    selection=dg.AssetSelection.assets(PINNED_MODEL_KEY, DEPLOYMENT_KEY),
    description="Check and publish one deployment (a partition): what the deploy sensor runs.",
)


def published_release(instance: dg.DagsterInstance, name: str) -> str | None:
    """The release token the latest deploy/deployment materialization of `name` published."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=DEPLOYMENT_KEY, asset_partitions=[name]), limit=1
    ).records
    if not records:
        return None
    return getattr(records[0].asset_materialization.metadata.get("release"), "value", None)


def wanted_release(record: DeploymentRecord, store: ObjectStore, registry: MlflowRegistry) -> str | None:
    """The release the deployment should serve now, or None when there is nothing to release yet."""
    if record.source == MLFLOW:
        try:
            pin = resolve_registry_pin(registry, record.name, record.model["uri"])
        except ModelRefused:
            return None  # the alias points nowhere (yet): nothing to deploy
    else:
        pin = read_pin(store, record.name)
        if pin is None:
            return None
    return release_token(record, pin)


def release_requests(
    instance: dg.DagsterInstance, store: ObjectStore, registry: MlflowRegistry, cursor: dict[str, str]
) -> tuple[list[dg.RunRequest], list, dict[str, str]]:
    """(run requests, partition add/delete requests, new cursor) for the deployments in the store now."""
    records = list_records(store)
    known = set(instance.get_dynamic_partitions(deployment_partitions.name))
    partition_requests = []
    added = sorted(set(records) - known)
    removed = sorted(known - set(records))
    if added:
        partition_requests.append(deployment_partitions.build_add_request(added))
    if removed:
        partition_requests.append(deployment_partitions.build_delete_request(removed))
    requests, seen = [], {name: token for name, token in cursor.items() if name in records}
    for name, record in records.items():
        token = wanted_release(record, store, registry)
        if token is None or cursor.get(name) == token:
            continue
        seen[name] = token
        if published_release(instance, name) == token:
            continue  # e.g. released by the bootstrap before the sensor first saw it
        requests.append(
            dg.RunRequest(
                run_key=f"{name}:{token}",
                partition_key=name,
                tags={"deploy/deployment": name, "deploy/release": token[:200]},
            )
        )
    return requests, partition_requests, seen


# Below the daemon's own loop (a sensor is evaluated at most every ~5 s): a pin or a moved alias should be
# served within 30 s, and a tick reads one small document per deployment.
@dg.sensor(
    job=deploy_release_job,
    minimum_interval_seconds=3,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a partition per deployment in the object store and releases a deployment whose "
    "config, pin or followed registry alias moved.",
)
def deploy_sensor(
    context: dg.SensorEvaluationContext, object_store: ObjectStore, mlflow: MlflowRegistry
) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    requests, partitions, seen = release_requests(context.instance, object_store, mlflow, cursor)
    return dg.SensorResult(
        run_requests=requests, dynamic_partitions_requests=partitions, cursor=json.dumps(seen, sort_keys=True)
    )


defs = dg.Definitions(jobs=[deploy_demo_job, deploy_release_job], sensors=[deploy_sensor])


def release_now(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.ExecuteInProcessResult]:
    """What one sensor tick would do, in-process: partitions synced, then each requested release run."""
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
        requests, partitions, _ = release_requests(
            instance, context.resources.object_store, context.resources.mlflow, {}
        )
    for request in partitions:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    job = defs.resolve_job_def(deploy_release_job.name)
    return [
        job.execute_in_process(instance=instance, partition_key=r.partition_key, tags=r.tags, raise_on_error=False)
        for r in requests
    ]
