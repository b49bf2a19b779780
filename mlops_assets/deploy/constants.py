"""Names of the deploy system: its contract, Dagster-free, shared by its assets, its router and the CLI."""

SYSTEM = "deploy"
# Serving snapshots of one deployment live under serving/deploy/<name>/ in the object store.
SNAPSHOT_SYSTEM = "deploy/{name}"

MODEL_FILE_CODE_VERSION = "2"
PINNED_MODEL_CODE_VERSION = "2"
DEPLOYMENT_CODE_VERSION = "3"


def snapshot_system(deployment: str) -> str:
    return SNAPSHOT_SYSTEM.format(name=deployment)


# Dynamic partitions of the deploy assets: one per deployment in the object store.
PARTITIONS = "deployments"
