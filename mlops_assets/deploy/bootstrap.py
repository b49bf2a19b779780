"""Deploy's first materialization: the two demo models trained, uploaded, deployed and released."""

import dagster as dg

from mlops_assets.common.runs import execute
from mlops_assets.deploy.automation import deploy_demo_job, release_now


def bootstrap(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """Train and upload both demos and create their deployments as `mlops deploy` would, then release them."""
    # A missing dataset fails only the Titanic branch; the Airbnb demo still deploys.
    execute(defs.resolve_job_def(deploy_demo_job.name), instance, raise_on_error=False)
    release_now(defs, instance)
