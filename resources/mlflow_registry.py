"""MLflow tracking and model registry, promoted with aliases (`champion`, `challenger`), never stages."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import dagster as dg
from pydantic import PrivateAttr

CHAMPION = "champion"
CHALLENGER = "challenger"
DEFAULT_UI_URL = "http://127.0.0.1:5000"

# Pinning requirements avoids MLflow's ~15 s requirement inference on every log_model call.
SKLEARN_REQUIREMENTS = ["scikit-learn==1.9.1", "skops==0.16.0", "numpy<3", "pandas<3"]

_setup_lock = threading.Lock()
_import_lock = threading.Lock()


def import_mlflow():
    """The mlflow module, imported under a lock. Two threads importing it at once (an API's watcher loading its
    champion, a request reading the registry) can meet in mlflow's circular imports, and one then fails with
    "partially initialized module 'mlflow'" (seen in CI). Every import of mlflow here goes through this first."""
    with _import_lock:
        import mlflow
    return mlflow


def model_uri(model_name: str, version: str | int) -> str:
    """The registry URI of one model version; the only place that spells it."""
    return f"models:/{model_name}/{version}"


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI page of one run (the UI routes with a URL fragment)."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def version_url(ui_url: str, model_name: str, version: str | int) -> str:
    """The MLflow UI page of one registered model version."""
    return f"{ui_url.rstrip('/')}/#/models/{quote(model_name, safe='')}/versions/{version}"


def is_missing_alias(exc: Exception) -> bool:
    """Whether MLflow's error says the model, or its alias, does not exist (and nothing else went wrong).

    A missing model is RESOURCE_DOES_NOT_EXIST; a missing alias of an existing model is INVALID_PARAMETER_VALUE
    ("Registered model alias champion not found."), which MLflow also uses for malformed names, so the message
    decides that one.
    """
    code = getattr(exc, "error_code", None)
    if code == "RESOURCE_DOES_NOT_EXIST":
        return True
    message = str(getattr(exc, "message", exc)).lower()
    return code == "INVALID_PARAMETER_VALUE" and "alias" in message and "not found" in message


class MlflowRegistry(dg.ConfigurableResource):
    """Experiments, runs and the model registry of one MLflow tracking server (a SQLite file by default).

    `s3_endpoint_url` is the endpoint of `s3://` artifact locations (MinIO, moto, ...); None means AWS.
    """

    tracking_uri: str
    artifact_root: str
    s3_endpoint_url: str | None = None
    ui_url: str = DEFAULT_UI_URL
    _client = PrivateAttr(default=None)

    def activate(self):
        """Point the process-global mlflow module at this store and return it."""
        mlflow = import_mlflow()
        with _setup_lock:
            if self.s3_endpoint_url:
                # MLflow's S3 artifact repository takes its endpoint from this variable alone, read whenever it
                # makes a client: every process that logs or loads a model goes through here first.
                os.environ["MLFLOW_S3_ENDPOINT_URL"] = self.s3_endpoint_url
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.tracking_uri)
        return mlflow

    def client(self):
        if self._client is None:
            self.activate()
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    def experiment_id(self, name: str) -> str:
        """The experiment's id, creating it with artifacts under `artifact_root/<name>` the first time."""
        client = self.client()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = f"{self.artifact_root.rstrip('/')}/{name}"
        try:
            return client.create_experiment(name, artifact_location=location)
        except Exception:  # created concurrently by another run
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    @contextlib.contextmanager
    def start_run(
        self, experiment: str, run_name: str | None = None, tags: dict[str, str] | None = None, nested: bool = False
    ) -> Iterator[Any]:
        mlflow = self.activate()
        experiment_id = self.experiment_id(experiment)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags, nested=nested) as run:
            yield run

    def log_sklearn_model(self, model: Any, name: str = "model", **kwargs: Any):
        """Log a fitted scikit-learn model to the active run (skops format) and return its ModelInfo."""
        mlflow = self.activate()
        kwargs.setdefault("pip_requirements", SKLEARN_REQUIREMENTS)
        return mlflow.sklearn.log_model(model, name=name, **kwargs)

    def register(self, model_name: str, model_uri: str, run_id: str, tags: dict[str, str] | None = None):
        """Register `model_uri` as a new version of `model_name`; tags carry the lineage (e.g. dagster_run_id)."""
        # The client resolves a `models:/m-...` source through the process-global store: make it this one, or a
        # process holding two registries (tests, a bootstrap over two homes) registers through the wrong one.
        self.activate()
        client = self.client()
        with contextlib.suppress(Exception):  # already registered
            client.create_registered_model(model_name)
        # A tracking server refuses a logged model's `models:/m-...` source without that model's id (a local
        # store does not check); mlflow.register_model passes it the same way.
        model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
        return client.create_model_version(
            name=model_name,
            source=model_uri,
            run_id=run_id,
            tags={k: str(v) for k, v in (tags or {}).items()},
            model_id=model_id,
        )

    def version_by_alias(self, model_name: str, alias: str = CHAMPION):
        """The model version holding `alias`, or None when no version does (or the model does not exist).

        Any other failure (tracking server unreachable, refused credentials, a 5xx) raises: read as "no champion",
        it would let a gate promote a candidate without comparing it with anything.
        """
        client = self.client()
        from mlflow.exceptions import MlflowException

        try:
            return client.get_model_version_by_alias(model_name, alias)
        except MlflowException as exc:
            if is_missing_alias(exc):
                return None
            raise

    def set_alias(self, model_name: str, alias: str, version: str | int) -> None:
        self.client().set_registered_model_alias(model_name, alias, str(version))

    def delete_alias(self, model_name: str, alias: str) -> None:
        with contextlib.suppress(Exception):
            self.client().delete_registered_model_alias(model_name, alias)

    def tag_version(self, model_name: str, version: str | int, tags: dict[str, Any]) -> None:
        client = self.client()
        for key, value in tags.items():
            client.set_model_version_tag(model_name, str(version), key, str(value))

    def run_url(self, run_id: str, experiment_id: str | None = None) -> str:
        if experiment_id is None:
            experiment_id = self.client().get_run(run_id).info.experiment_id
        return run_url(self.ui_url, experiment_id, run_id)

    def version_url(self, model_name: str, version: str | int) -> str:
        return version_url(self.ui_url, model_name, version)

    def link_metadata(
        self, run_id: str, model_name: str, version: str | int, experiment_id: str | None = None
    ) -> dict[str, dg.MetadataValue]:
        """Metadata entries that open the model's MLflow run and registered version in the MLflow UI."""
        return {
            "mlflow_run_url": dg.MetadataValue.url(self.run_url(run_id, experiment_id)),
            "mlflow_version_url": dg.MetadataValue.url(self.version_url(model_name, version)),
        }

    def load_sklearn(self, model_uri: str):
        mlflow = self.activate()
        return mlflow.sklearn.load_model(model_uri)

    def load_version(self, model_name: str, version: str | int):
        """The scikit-learn model of one registered version."""
        return self.load_sklearn(model_uri(model_name, version))
