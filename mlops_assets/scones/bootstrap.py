"""Scones' first materialization: the dataset, a champion classifier, a first chart and a few sample landings."""

import dagster as dg

from mlops_assets.common.runs import execute
from mlops_assets.scones.automation import monitoring_job, training_job
from mlops_assets.scones.constants import DATASET_PREFIX, INCOMING_PREFIX
from resources.object_store import ObjectStore


def bootstrap(definitions: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """Dataset, a champion classifier and a first monitoring chart (~30 s on a laptop CPU)."""
    for job_name in (training_job.name, monitoring_job.name):
        result = execute(definitions.resolve_job_def(job_name), instance, raise_on_error=True)
        assert result.success
    land_sample_images(definitions.resources["object_store"])


SAMPLE_LANDINGS = 3


def land_sample_images(store: ObjectStore) -> list[str]:
    """Copy a few test images into the incoming prefix: the running sensor classifies them, as a first demo."""
    samples = [info.key for info in store.list_objects(f"{DATASET_PREFIX}/test/")][:SAMPLE_LANDINGS]
    landed = []
    for key in samples:
        target = f"{INCOMING_PREFIX}sample-{key.rsplit('/', 1)[-1]}"
        store.put_bytes(target, store.get_bytes(key), "image/png")
        landed.append(target)
    return landed
