"""The deployments the serving process answers for, read from the object store and swapped in whole.

One watcher (polled with the others) lists the deployment configs and loads the current snapshot of each; a
deployment that is removed (`mlops undeploy`) disappears at the next poll, a new snapshot replaces the old one,
and a snapshot that fails to load leaves that deployment as it was (the others still refresh).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops_assets.deploy.compiled import COMPILED_RUNTIME, PIPELINE_RUNTIME, CompiledModel, compiled_supports
from mlops_assets.deploy.config import Deployment, predict_value
from mlops_assets.deploy.constants import snapshot_system
from mlops_assets.deploy.models import Pin, load_pinned
from mlops_assets.deploy.records import DeploymentRecord, list_records
from resources.model_bucket import ModelBucket, sha256_bytes
from resources.object_store import ObjectStore
from resources.snapshots import current_snapshot, read_snapshot_file

log = logging.getLogger("serving.deploy")


@dataclass(frozen=True)
class ServedModel:
    deployment: Deployment
    model: Any
    pin: Pin
    snapshot_id: str
    dagster_run_id: str | None
    compiled: CompiledModel | None = None  # the ONNX copy that passed its probes, if any

    def record(self) -> dict:
        return {
            "source": self.pin.source,
            "bucket": self.pin.bucket,
            "key": self.pin.key,
            "version_id": self.pin.version_id,
            "tag": self.pin.tag,
            "sha256": self.pin.sha256,
            "snapshot_id": self.snapshot_id,
            "dagster_run_id": self.dagster_run_id,
        }

    @property
    def runtime(self) -> str:
        return COMPILED_RUNTIME if self.compiled is not None else PIPELINE_RUNTIME

    def predict(self, row: dict) -> tuple[float, str]:
        """The shown value and the runtime that computed it: the compiled copy where it was vouched for."""
        if self.compiled is not None and compiled_supports(self.deployment, row):
            try:
                return self.compiled.predict_value(row), COMPILED_RUNTIME
            except Exception:  # the Pipeline is the reference: it answers, or gives the error the user should see
                log.warning("compiled %s failed on a row; the Pipeline answers it", self.deployment.name, exc_info=True)
        return predict_value(self.deployment, self.model, row), PIPELINE_RUNTIME


def load_compiled(
    deployment: Deployment, store: ObjectStore, pointer: dict, compiled: dict | None
) -> CompiledModel | None:
    """The snapshot's ONNX copy, if it has one whose digest matches; any problem leaves the Pipeline serving."""
    if not compiled:
        return None
    try:
        data = read_snapshot_file(store, pointer, compiled["file"])
        if sha256_bytes(data) != compiled["sha256"]:
            raise ValueError(f"its SHA-256 is not the published {compiled['sha256']}")
        return CompiledModel(deployment, data)
    except Exception as exc:
        log.warning("deploy %s: compiled copy not used (%s); the Pipeline serves", deployment.name, exc)
        return None


def load_served(bucket: ModelBucket, store: ObjectStore, pointer: dict, registry=None) -> ServedModel:
    document = json.loads(read_snapshot_file(store, pointer, "deployment.json"))
    if "config" not in document:
        raise ValueError(f"snapshot {pointer['snapshot_id']} predates deployments as data; release it again")
    deployment = DeploymentRecord.from_json(document["config"]).deployment
    pin = Pin(**document["pin"])
    model = load_pinned(bucket, pin, registry)  # refused files raise: the previous model keeps serving
    served = ServedModel(
        deployment,
        model,
        pin,
        pointer["snapshot_id"],
        document.get("dagster_run_id"),
        load_compiled(deployment, store, pointer, document.get("compiled")),
    )
    log.info("deploy %s serves %s version %s (%s)", deployment.name, pin.key, pin.version_id, served.runtime)
    return served


class DeploymentsWatcher:
    """`current`: name → ServedModel of every deployment with a loadable snapshot; `records`: every config."""

    system = "deploy"

    def __init__(
        self, store: ObjectStore, bucket: ModelBucket, registry=None, on_change: Callable[[dict], None] | None = None
    ):
        self.store, self.bucket, self.registry = store, bucket, registry
        self.on_change = on_change
        self.records: dict[str, DeploymentRecord] = {}
        self.current: dict[str, ServedModel] = {}

    def refresh(self) -> bool:
        records = list_records(self.store)
        served = {name: model for name, model in self.current.items() if name in records}
        changed = len(served) != len(self.current) or set(records) != set(self.records)
        for name in records:
            pointer = current_snapshot(self.store, snapshot_system(name))
            if pointer is None or (name in served and served[name].snapshot_id == pointer["snapshot_id"]):
                continue
            try:
                served[name] = load_served(self.bucket, self.store, pointer, self.registry)
                changed = True
            except Exception:  # one broken publication must not stop the others
                log.exception(
                    "deploy %s: snapshot %s not loaded; keeping what was served", name, pointer["snapshot_id"]
                )
        self.records = records
        if changed:
            self.current = served  # one assignment: requests see the old set or the new one
            if self.on_change is not None:
                self.on_change(served)
        return changed

    def default(self) -> ServedModel | None:
        """The deployment served at /api/predict: the one whose config says default (the original's route)."""
        return next((m for m in self.current.values() if m.deployment.default), None)
