"""Deploy automation: a sensor redeploys a deployment when its pin moves (`mlops pin NAME VERSION_ID`)."""


import json

import dagster as dg

from mlops_assets.deploy.assets import DEPLOYMENTS, deployment_key, pinned_model_key
from mlops_assets.deploy.constants import GROUP
from mlops_assets.deploy.models import read_pin
from resources.object_store import ObjectStore

deploy_demo_job = dg.define_asset_job(
    "deploy_demo_job", selection=dg.AssetSelection.groups(GROUP),
    description="Train and upload the demo models, check the pinned versions and publish every deployment.",
)

deploy_release_job = dg.define_asset_job(
    "deploy_release_job",
    selection=dg.AssetSelection.assets(*[pinned_model_key(n) for n in DEPLOYMENTS],
                                       *[deployment_key(n) for n in DEPLOYMENTS]),
    description="Load, check and publish the pinned version of deployments (what the pin sensor runs).",
)


def deployed_token(instance: dg.DagsterInstance, name: str) -> str | None:
    """The pin token the latest `<name>_deployment` materialization published."""
    event = instance.get_latest_materialization_event(deployment_key(name))
    if event is None or event.asset_materialization is None:
        return None
    return getattr(event.asset_materialization.metadata.get("pin_token"), "value", None)


def pin_requests(store: ObjectStore, cursor: dict[str, str], deployed=lambda name: None
                 ) -> tuple[list[dg.RunRequest], dict[str, str]]:
    """One run per deployment whose pin differs from the last one seen and from the one already deployed."""
    requests, seen = [], dict(cursor)
    for name in DEPLOYMENTS:
        pin = read_pin(store, name)
        if pin is None or cursor.get(name) == pin.token:
            continue
        seen[name] = pin.token
        if name not in cursor and deployed(name) == pin.token:
            continue  # e.g. deployed by the bootstrap before the sensor first ran
        requests.append(dg.RunRequest(
            run_key=f"{name}:{pin.token}",
            asset_selection=[pinned_model_key(name), deployment_key(name)],
            tags={"deploy/deployment": name, "deploy/version_id": pin.version_id},
        ))
    return requests, seen


# Below the daemon's own loop (a sensor is evaluated at most every ~5 s): a pin should be served within 30 s, and
# a tick reads one small pin object per deployment.
@dg.sensor(job=deploy_release_job, minimum_interval_seconds=3, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Notices a newly pinned model version and re-materializes that deployment.")
def deploy_pin_sensor(context: dg.SensorEvaluationContext, object_store: ObjectStore) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    requests, seen = pin_requests(object_store, cursor, lambda name: deployed_token(context.instance, name))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))


defs = dg.Definitions(jobs=[deploy_demo_job, deploy_release_job], sensors=[deploy_pin_sensor])


def bootstrap(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """Train, upload, pin (first time), check and publish both demo deployments in-process (~20 s)."""
    # A missing dataset fails only the Titanic branch; the Airbnb demo still deploys.
    defs.resolve_job_def(deploy_demo_job.name).execute_in_process(instance=instance, raise_on_error=False)
