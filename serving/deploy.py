"""Deploy routes: the original's async prediction API, per deployment, and the web forms generated from form.yml.

POST validates against the schema generated from the config and enqueues (durable SQLite queue); a worker
thread of this process predicts with the pinned model and records COMPLETE or ERROR; GET reads the row.
Models come from the deployment snapshots Dagster publishes, loaded only after their digest is verified.
"""

import json
import logging
import os
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, ValidationError
from threadpoolctl import threadpool_limits

from mlops_assets.deploy.compiled import COMPILED_RUNTIME, PIPELINE_RUNTIME, CompiledModel, compiled_supports
from mlops_assets.deploy.config import Deployment, default_deployment, load_deployments, predict_value
from mlops_assets.deploy.constants import snapshot_system
from mlops_assets.deploy.models import Pin, load_pinned
from resources.model_bucket import ModelBucket, build_model_bucket, sha256_bytes
from resources.object_store import ObjectStore
from resources.snapshots import read_snapshot_file
from serving.deploy_queue import DeployQueue, Prediction, QueueWorker
from serving.lineage import Lineage

TITLE = "Deploy any scikit-learn Pipeline"
HOME = "/deploy"
log = logging.getLogger("serving.deploy")
MAX_WAIT_SECONDS = 10.0  # a long poll holds a connection open: keep it short


@dataclass(frozen=True)
class ServedModel:
    deployment: Deployment
    model: Any
    pin: Pin
    snapshot_id: str
    dagster_run_id: str | None
    compiled: CompiledModel | None = None  # the ONNX copy that passed its probes, if any

    def record(self) -> dict:
        return {"bucket": self.pin.bucket, "key": self.pin.key, "version_id": self.pin.version_id,
                "tag": self.pin.tag, "sha256": self.pin.sha256, "snapshot_id": self.snapshot_id,
                "dagster_run_id": self.dagster_run_id}

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


class PredictionAccepted(BaseModel):
    prediction_id: str
    status: Literal["PENDING"] = "PENDING"


class PredictionStatus(BaseModel):
    prediction_id: str
    status: Literal["PENDING", "COMPLETE", "ERROR"]
    body: float | str | None = Field(description="The value when COMPLETE, the error message when ERROR")
    deployment: str
    model_version: str | None = Field(description="Object version id of the model file that answered")
    model: dict | None = Field(description="Bucket, key, version id, tag and SHA-256 of the model file")
    lineage: Lineage | None = None


def load_served(deployment: Deployment, bucket: ModelBucket, store: ObjectStore, pointer: dict) -> ServedModel:
    record = json.loads(read_snapshot_file(store, pointer, "deployment.json"))
    pin = Pin(**record["pin"])
    model = load_pinned(bucket, pin)  # refused files raise: the poller keeps serving the previous model
    served = ServedModel(deployment, model, pin, pointer["snapshot_id"], record.get("dagster_run_id"),
                         load_compiled(deployment, store, pointer, record.get("compiled")))
    log.info("deploy %s serves %s version %s (%s)", deployment.name, pin.key, pin.version_id, served.runtime)
    return served


def load_compiled(deployment: Deployment, store: ObjectStore, pointer: dict, compiled: dict | None) -> CompiledModel | None:
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


def status_of(row: Prediction) -> PredictionStatus:
    body = row.result if row.status == "COMPLETE" else row.error if row.status == "ERROR" else None
    lineage = None
    if row.model:
        lineage = Lineage(model_name=f"{row.deployment}:{row.model['key']}", model_version=row.model["version_id"],
                          alias="pinned", dagster_run_id=row.model.get("dagster_run_id"))
    return PredictionStatus(prediction_id=row.prediction_id, status=row.status, body=body, deployment=row.deployment,
                            model_version=(row.model or {}).get("version_id"), model=row.model, lineage=lineage)


def build_router(ctx) -> APIRouter:
    deployments = load_deployments()
    default = default_deployment(deployments)
    bucket = build_model_bucket(ctx.settings)
    queue = DeployQueue(ctx.settings.home / "serving" / "deploy_queue.db")
    watchers = {name: ctx.watch_snapshot(snapshot_system(name), partial(load_served, d, bucket))
                for name, d in deployments.items()}

    def ready() -> list[str]:
        return [name for name, watcher in watchers.items() if watcher.current is not None]

    def resolve(job):
        served: ServedModel = watchers[job.deployment].current  # read once: a swap mid-job cannot mix versions
        record = served.record()

        def predict() -> float:
            value, record["runtime"] = served.predict(job.request)  # stored with the outcome, after this call
            return value

        return record, predict

    # OpenMP's thread count is per thread, so the limit is set inside the worker thread: single-row predictions
    # gain nothing from a thread team, which only spins against the request threads for the two cores.
    worker = QueueWorker(queue, resolve, ready, log, thread_setup=lambda: threadpool_limits(1))
    # An API-only process (MLOPS_DEPLOY_WORKER=0) leaves predictions to workers of other processes.
    run_worker = os.environ.get("MLOPS_DEPLOY_WORKER", "1") != "0"

    async def lifespan(_app):
        if run_worker:
            worker.start()
        try:
            yield
        finally:
            worker.stop()
            queue.close()

    router = APIRouter(tags=["deploy"], lifespan=lifespan)

    def enqueue(name: str, payload: BaseModel) -> PredictionAccepted:
        if watchers[name].current is None:
            raise HTTPException(503, f"deployment {name!r} has no deployed model yet: pin a version "
                                     f"(`mlops pin {name} VERSION_ID`) and let Dagster publish it")
        prediction_id = queue.enqueue(name, payload.model_dump(mode="json"))
        worker.wake()
        return PredictionAccepted(prediction_id=prediction_id)

    def add_predict_route(path: str, deployment: Deployment) -> None:
        schema = deployment.schema

        # On the event loop: the insert is a fraction of a millisecond, less than a hop to a thread and back.
        async def predict(payload: schema) -> PredictionAccepted:  # type: ignore[valid-type]
            return enqueue(deployment.name, payload)

        def predict_hot(body: bytes) -> tuple[int, bytes] | None:
            """Valid bodies for a loaded model, answered before routing (serving.hot_path): the sooner the event
            loop lets go, the sooner the worker thread gets to predict. Anything else → the route above."""
            if watchers[deployment.name].current is None:
                return None
            try:
                payload = schema.model_validate_json(body)
            except ValidationError:
                return None
            return 202, enqueue(deployment.name, payload).model_dump_json().encode()

        ctx.hot_paths[path] = predict_hot
        router.add_api_route(path, predict, methods=["POST"], status_code=202, response_model=PredictionAccepted,
                             name=f"predict_{deployment.name}", summary=f"Queue a prediction: {deployment.title}")

    for name, deployment in deployments.items():
        add_predict_route(f"/api/{name}/predict", deployment)
    if default is not None:
        add_predict_route("/api/predict", default)

    @router.post("/api/{deployment}/predict", include_in_schema=False)
    def unknown_deployment(deployment: str):
        raise HTTPException(404, f"deployment {deployment!r} not found; known: {', '.join(deployments)}")

    @router.get("/api/predict/{prediction_id}", response_model=PredictionStatus,
                responses={404: {"description": "prediction not found"}})
    async def prediction(prediction_id: str, wait: float = Query(0.0, ge=0.0, le=MAX_WAIT_SECONDS, description=(
            "Long poll: answer as soon as the prediction is COMPLETE or ERROR, or after this many seconds"))) -> PredictionStatus:
        row = await worker.wait_finished(prediction_id, wait) if wait > 0 else queue.get(prediction_id)
        if row is None:
            raise HTTPException(404, "prediction not found")
        return status_of(row)

    def served_record(name: str) -> dict | None:
        served: ServedModel | None = watchers[name].current
        if served is None:
            return None
        return {**served.record(), "runtime": served.runtime}

    @router.get("/api/deployments")
    def list_deployments() -> list[dict]:
        return [{"name": name, "title": d.title, "units": d.units, "default": default is d,
                 "fields": d.field_names, "served": served_record(name)} for name, d in deployments.items()]

    def page(request: Request, template: str, name: str | None = None, **extra):
        if name is not None and name not in deployments:
            raise HTTPException(404, f"deployment {name!r} not found")
        served = watchers[name].current if name else None
        return ctx.templates.TemplateResponse(request, template, {
            "deployments": deployments, "deployment": deployments.get(name) if name else None,
            "served": served, "watchers": watchers, **extra})

    @router.get("/deploy", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request):
        return page(request, "deploy_index.html")

    @router.get("/deploy/{name}", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, name: str):
        return page(request, "deploy_home.html", name)

    @router.get("/deploy/{name}/form", response_class=HTMLResponse, include_in_schema=False)
    def form(request: Request, name: str):
        fields = [{"name": f.name, "dtype": f.dtype, "required": f.required} for f in deployments[name].fields] \
            if name in deployments else []
        return page(request, "deploy_form.html", name, fields=fields)

    return router
