"""Deployments as data: one JSON document per deployment in the object store, `deploy/deployments/<name>.json`.

`mlops deploy` writes it, `mlops undeploy` deletes it, Dagster's deploy sensor turns each one into a partition
of the `deploy` assets, and the serving process lists them to know which routes exist. Nothing about a
deployment lives in the package: the two demos are written here at bootstrap like any other.

A record holds the form (form.yml's format, inferred from the Pipeline or given), the serving spec (prediction
rule, raw example) and the model source: `bucket` (the version comes from the pin, `deploy/pins/<name>.json`,
which `mlops pin` moves) or `mlflow` (a registry URI; an alias such as `models:/Name@champion` is followed).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from mlops_assets.deploy.config import ConfigError, Deployment, deployment_from_config
from resources.object_store import ObjectNotFound, ObjectStore

RECORDS_PREFIX = "deploy/deployments/"
STATUS_PREFIX = "deploy/status/"
BUCKET, MLFLOW = "bucket", "mlflow"
# models:/Name@alias or models:/Name/3
REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


def record_key(name: str) -> str:
    return f"{RECORDS_PREFIX}{name}.json"


def status_key(name: str) -> str:
    return f"{STATUS_PREFIX}{name}.json"


def parse_registry_uri(uri: str) -> tuple[str, str | None, str | None]:
    """(model name, alias, version) of a registry URI; one of alias and version is None."""
    match = REGISTRY_URI.match(uri or "")
    if match is None:
        raise ConfigError(f"{uri!r} is not a registry model URI; use models:/NAME@ALIAS or models:/NAME/VERSION")
    return match["name"], match["alias"], match["version"]


@dataclass(frozen=True)
class DeploymentRecord:
    name: str
    form: dict
    spec: dict
    model: dict  # {"source": "bucket", "key": ...} or {"source": "mlflow", "uri": "models:/..."}
    form_source: str = "form.yml"  # or "inferred"
    revision: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    updated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def source(self) -> str:
        return self.model.get("source", BUCKET)

    @property
    def deployment(self) -> Deployment:
        return deployment_from_config(self.name, self.form, self.spec)

    def describe_model(self) -> str:
        return (
            self.model["uri"]
            if self.source == MLFLOW
            else f"{self.model.get('bucket', '')}/{self.model.get('key', '')}"
        )

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> DeploymentRecord:
        known = {
            k: data[k] for k in ("name", "form", "spec", "model", "form_source", "revision", "updated_at") if k in data
        }
        return cls(**known)


def save_record(store: ObjectStore, record: DeploymentRecord) -> DeploymentRecord:
    record.deployment  # noqa: B018  (the property validates: refuse to store a config that could not be served)
    store.put_bytes(
        record_key(record.name), json.dumps(record.to_json(), ensure_ascii=False).encode(), "application/json"
    )
    return record


def read_record(store: ObjectStore, name: str) -> DeploymentRecord | None:
    try:
        return DeploymentRecord.from_json(json.loads(store.get_bytes(record_key(name))))
    except ObjectNotFound:
        return None


def list_records(store: ObjectStore) -> dict[str, DeploymentRecord]:
    """Every deployment in the store, by name (sorted); an unreadable document is skipped, not fatal."""
    records = {}
    for info in sorted(store.list_objects(RECORDS_PREFIX), key=lambda i: i.key):
        name = info.key[len(RECORDS_PREFIX) :].removesuffix(".json")
        if "/" in name or not info.key.endswith(".json"):
            continue
        try:
            records[name] = DeploymentRecord.from_json(json.loads(store.get_bytes(info.key)))
        except (ObjectNotFound, ValueError, TypeError, KeyError):
            continue
    return records


def delete_record(store: ObjectStore, name: str) -> None:
    store.delete(record_key(name))


def write_status(store: ObjectStore, name: str, status: dict) -> None:
    """The outcome of the latest checks of a deployment, for `mlops deployments` (which never asks Dagster)."""
    store.put_bytes(status_key(name), json.dumps(status).encode(), "application/json")


def read_status(store: ObjectStore, name: str) -> dict | None:
    try:
        return json.loads(store.get_bytes(status_key(name)))
    except ObjectNotFound:
        return None
