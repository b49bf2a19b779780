"""The receipt of a logged prediction: model version → MLflow run → the Dagster run that made the model → the
data versions (and partitions) of what it was trained on → the code version.

Everything is read when a receipt is asked for, never on the answer path: the registry for the version's run
and tags, the Dagster instance (DAGSTER_HOME, the same one the webserver and daemon use) for the run and its
materialization events. A part that cannot be read (no instance configured, a run deleted) is reported as
missing with the reason, instead of failing the whole receipt.
"""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger("serving.receipts")

DATA_VERSION_TAG = "dagster/data_version"
CODE_VERSION_TAG = "dagster/code_version"
INPUT_VERSION_PREFIX = "dagster/input_data_version/"
INPUT_POINTER_PREFIX = "dagster/input_event_pointer/"


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _registry_model(lineage: dict, row: dict) -> tuple[str, str] | None:
    """(registered name, version) of the answer's model, when it came from the MLflow registry."""
    if row["system"] == "deploy":
        key = lineage.get("key") or ""
        if lineage.get("source") == "mlflow" and key.startswith("models:/"):
            name, _, version = key.removeprefix("models:/").rpartition("/")
            return (name, version) if name and version.isdigit() else None
        return None
    if "alias" in lineage and row.get("model_name") and row.get("model_version"):
        return row["model_name"], str(row["model_version"])
    return None


class Receipts:
    def __init__(self, registry, dagster_home: str | None, instance=None):
        self.registry = registry
        self.dagster_home = dagster_home
        self._instance = instance

    def instance(self):
        if self._instance is None and self.dagster_home:
            import dagster as dg

            self._instance = dg.DagsterInstance.from_config(self.dagster_home)
        return self._instance

    def build(self, row: dict) -> dict:
        lineage = _loads(row.get("lineage")) or {}
        missing: list[str] = []
        receipt: dict[str, Any] = {
            "model": {"name": row.get("model_name"), "version": row.get("model_version")},
            "mlflow_run": None,
            "dagster_run": None,
            "model_materialization": None,
            "training_data": [],
            "code_version": None,
            "missing": missing,
        }
        trained_by = lineage.get("dagster_run_id")
        registered = _registry_model(lineage, row)
        if registered is not None:
            trained_by = self._mlflow_part(receipt, registered, missing) or trained_by
        elif row["system"] == "steam":
            receipt["model"]["snapshot_id"] = lineage.get("snapshot_id")
            missing.append("mlflow_run: steam's answers are computed tables, not an MLflow model")
        else:
            receipt["model"]["file"] = {k: lineage.get(k) for k in ("bucket", "key", "version_id", "sha256", "tag")}
            missing.append("mlflow_run: the deployment serves a file from the model bucket, not a registry version")
        if registered is None and row["system"] == "deploy":
            missing.append(
                "training: the file was trained outside the platform; dagster_run is the release run "
                "that checked and published it"
            )
        if trained_by:
            part = self._dagster_part(trained_by, row, lineage, missing, "dagster_run")
            if part is not None:
                receipt["dagster_run"] = part["run"]
                receipt["model_materialization"] = part["model_materialization"]
                receipt["training_data"] = part["training_data"]
                receipt["code_version"] = (part["model_materialization"] or {}).get("code_version")
        else:
            missing.append("dagster_run: the model version carries no dagster_run_id tag")
        released = lineage.get("dagster_run_id") if row["system"] == "deploy" else None
        if released and released != trained_by:
            receipt["released_by"] = self._dagster_part(released, row, lineage, missing, "released_by")
        return receipt

    def _mlflow_part(self, receipt: dict, registered: tuple[str, str], missing: list[str]) -> str | None:
        name, version = registered
        try:
            model_version = self.registry.client().get_model_version(name, version)
        except Exception as exc:
            missing.append(f"mlflow_run: {name} v{version} is not in the registry ({type(exc).__name__})")
            return None
        receipt["model"].update(name=name, version=version, registry_url=self.registry.version_url(name, version))
        run_id = model_version.run_id
        if run_id:
            run = {"run_id": run_id, "url": None}
            try:
                info = self.registry.client().get_run(run_id).info
                run.update(
                    experiment_id=info.experiment_id,
                    status=info.status,
                    url=self.registry.run_url(run_id, info.experiment_id),
                )
            except Exception as exc:
                missing.append(f"mlflow_run: run {run_id} cannot be read ({type(exc).__name__})")
            receipt["mlflow_run"] = run
        return dict(model_version.tags or {}).get("dagster_run_id")

    def _dagster_part(self, run_id: str, row: dict, lineage: dict, missing: list[str], what: str) -> dict | None:
        instance = self.instance()
        if instance is None:
            missing.append(f"{what}: no Dagster instance configured (DAGSTER_HOME) to read run {run_id}")
            return None
        from dagster import DagsterEventType

        run = instance.get_run_by_id(run_id)
        if run is None:
            missing.append(f"{what}: run {run_id} is not in the Dagster instance")
            return None
        records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
        materializations = [self._describe(instance, r) for r in records]
        chosen = _model_materialization(materializations, row, lineage)
        return {
            "run": {
                "run_id": run_id,
                "job_name": run.job_name,
                "status": run.status.value,
                "materialized": [
                    m["asset_key"] + (f" [{m['partition']}]" if m["partition"] else "") for m in materializations
                ],
            },
            "model_materialization": chosen and {k: v for k, v in chosen.items() if k != "metadata"},
            "training_data": chosen["inputs"] if chosen else [],
        }

    def _describe(self, instance, record) -> dict:
        materialization = record.event_log_entry.asset_materialization
        tags = materialization.tags or {}
        inputs = []
        for tag, version in tags.items():
            if not tag.startswith(INPUT_VERSION_PREFIX):
                continue
            key = tag.removeprefix(INPUT_VERSION_PREFIX)
            inputs.append(
                {
                    "asset_key": key,
                    "data_version": version,
                    "partition": self._input_partition(instance, key, tags.get(INPUT_POINTER_PREFIX + key)),
                }
            )
        return {
            "asset_key": materialization.asset_key.to_user_string(),
            "partition": materialization.partition,
            "data_version": tags.get(DATA_VERSION_TAG),
            "code_version": tags.get(CODE_VERSION_TAG),
            "timestamp": record.timestamp,
            "inputs": inputs,
            "metadata": {k: getattr(v, "value", v) for k, v in materialization.metadata.items()},
        }

    @staticmethod
    def _input_partition(instance, key: str, pointer: str | None) -> str | None:
        if not pointer or not pointer.isdigit():
            return None
        import dagster as dg

        found = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey.from_user_string(key), storage_ids=[int(pointer)]), limit=1
        )
        return found.records[0].partition_key if found.records else None


def _model_materialization(materializations: list[dict], row: dict, lineage: dict) -> dict | None:
    """The materialization in the run that produced the served version: its metadata names that version."""
    version = str(row.get("model_version") or "")
    wanted = {version, lineage.get("snapshot_id"), lineage.get("version_id")} - {None, ""}
    for m in materializations:
        values = {str(v) for v in m["metadata"].values() if isinstance(v, str)}
        if values & wanted or any(v.endswith(f"/versions/{version}") for v in values):
            return m
    return None
