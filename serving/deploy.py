"""Deploy routes: the original's async prediction API, per deployment, and the web forms generated from the form.

Deployments are data: the serving process lists the deployment configs in the object store and loads each one's
current snapshot (published by Dagster once its checks passed), so `mlops deploy` adds routes and `mlops
undeploy` removes them without a restart. POST validates against the deployment's schema and enqueues (durable
queue: a SQLite file, or a PostgreSQL table shared by several API and consumer processes, serving.queue_backend);
a worker thread (or `python -m serving.deploy_consumer`) predicts with the checked model and records COMPLETE or
ERROR; GET reads the row. Bucket models are loaded only after their digest is verified. The OpenAPI document lists one path per
deployment with its exact schema, regenerated as deployments come and go.
"""

import logging
import os
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, ValidationError
from threadpoolctl import threadpool_limits

from mlops_assets.deploy.config import validated_row
from resources.model_bucket import build_model_bucket
from serving.deploy_queue import Prediction, QueueWorker
from serving.deploy_served import DeploymentsWatcher, ServedModel
from serving.lineage import Lineage
from serving.pistachio import printable_errors
from serving.queue_backend import completion_waits, open_deploy_queue

TITLE = "Deploy any scikit-learn Pipeline"
HOME = "/deploy"
log = logging.getLogger("serving.deploy")
MAX_WAIT_SECONDS = 10.0  # a long poll holds a connection open: keep it short


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


class DeploymentSummary(BaseModel):
    name: str
    title: str
    units: str
    model: str = Field(description="The model the deployment follows: bucket/key or a registry URI")
    default: bool = Field(description="Whether POST /api/predict serves it")
    fields: list[str]
    served: dict | None = Field(description="The version served now (None before its first checked release)")


def status_of(row: Prediction) -> PredictionStatus:
    body = row.result if row.status == "COMPLETE" else row.error if row.status == "ERROR" else None
    lineage = None
    if row.model:
        alias = "pinned" if row.model.get("source", "bucket") == "bucket" else (row.model.get("tag") or "version")
        lineage = Lineage(
            model_name=f"{row.deployment}:{row.model['key']}",
            model_version=row.model["version_id"],
            alias=alias,
            dagster_run_id=row.model.get("dagster_run_id"),
        )
    return PredictionStatus(
        prediction_id=row.prediction_id,
        status=row.status,
        body=body,
        deployment=row.deployment,
        model_version=(row.model or {}).get("version_id"),
        model=row.model,
        lineage=lineage,
    )


def request_errors(error: ValidationError) -> RequestValidationError:
    """pydantic's errors as FastAPI's usual 422, each located in the body and naming its field."""
    return RequestValidationError(
        [{**e, "loc": ("body", *e["loc"])} for e in jsonable_encoder(printable_errors(error))]
    )


def resolver(ctx, watcher: DeploymentsWatcher):
    """`resolve(job) -> (model record, predict)` for QueueWorker: the version served now, and a call that predicts
    and logs the answer. Shared by the API's worker thread and the consumer processes (serving.deploy_consumer)."""

    def resolve(job):
        served = watcher.current.get(job.deployment)  # read once: a swap mid-job cannot mix versions
        if served is None:
            raise LookupError(f"deployment {job.deployment!r} is no longer deployed")
        record = served.record()

        def predict() -> float:
            value, record["runtime"] = served.predict(job.request)  # stored with the outcome, after this call
            ctx.inference_log.record(
                "deploy",
                f"/api/{job.deployment}/predict",
                job.request,
                {"value": value, "runtime": record["runtime"]},
                f"{job.deployment}:{served.pin.key}",
                served.pin.version_id,
                dict(record),
                prediction_id=job.prediction_id,
            )
            return value

        return record, predict

    return resolve


def build_router(ctx) -> APIRouter:
    queue = open_deploy_queue(ctx.settings)  # SQLite file, or the table shared by every API and consumer process
    registered: set[str] = set()

    def routes_changed(served: dict[str, ServedModel]) -> None:
        """Valid bodies for a loaded model are answered before routing (serving.hot_path): the sooner the event
        loop lets go, the sooner the worker thread gets to predict. The paths follow the deployments."""
        wanted = {f"/api/{name}/predict": name for name in served}
        default = watcher.default()
        if default is not None:
            wanted["/api/predict"] = default.deployment.name
        for path in registered - set(wanted):
            ctx.hot_paths.pop(path, None)
        for path, name in wanted.items():
            ctx.hot_paths[path] = hot_handler(name)
        registered.clear()
        registered.update(wanted)

    watcher = ctx.poller.add(
        DeploymentsWatcher(ctx.store, build_model_bucket(ctx.settings), ctx.registry, on_change=routes_changed)
    )

    def ready() -> list[str]:
        return list(watcher.current)

    resolve = resolver(ctx, watcher)

    def locate(prediction_id: str):
        """Queue ids are uuid4: the inference log finds a deploy row by the time its outcome was stored."""
        row = queue.get(prediction_id)
        if row is None or row.completed_at is None:
            return None
        return "deploy", datetime.fromtimestamp(row.completed_at, tz=UTC)

    ctx.inference_log.locators.append(locate)

    # OpenMP's thread count is per thread, so the limit is set inside the worker thread: single-row predictions
    # gain nothing from a thread team, which only spins against the request threads for the two cores.
    worker = QueueWorker(queue, resolve, ready, log, thread_setup=lambda: threadpool_limits(1))
    # An API-only process (MLOPS_DEPLOY_WORKER=0) leaves predictions to workers of other processes.
    run_worker = os.environ.get("MLOPS_DEPLOY_WORKER", "1") != "0"
    waits = completion_waits(ctx.settings, queue)

    async def lifespan(_app):
        if run_worker:
            worker.start()
        if waits is not None:
            waits.start()
        try:
            yield
        finally:
            worker.stop()
            if waits is not None:
                waits.stop()
            queue.close()

    router = APIRouter(tags=["deploy"], lifespan=lifespan)

    def enqueue(name: str, row: dict) -> PredictionAccepted:
        prediction_id = queue.enqueue(name, row)
        worker.wake()
        return PredictionAccepted(prediction_id=prediction_id)

    def hot_handler(name: str):
        def predict_hot(body: bytes) -> tuple[int, bytes] | None:
            served = watcher.current.get(name)
            if served is None:
                return None
            try:
                row = validated_row(served.deployment, body)
            except ValidationError:
                return None  # the route answers the 422
            return 202, enqueue(name, row).model_dump_json().encode()

        return predict_hot

    def served_or_fail(name: str) -> ServedModel:
        served = watcher.current.get(name)
        if served is not None:
            return served
        if name in watcher.records:
            raise HTTPException(
                503,
                f"deployment {name!r} has no checked model version yet: Dagster's deploy "
                "sensor releases it once its checks pass",
            )
        raise HTTPException(404, f"deployment {name!r} not found; known: {', '.join(watcher.current) or 'none'}")

    async def predict_for(name: str, request: Request) -> PredictionAccepted:
        served = served_or_fail(name)
        try:
            row = validated_row(served.deployment, await request.body())
        except ValidationError as error:
            raise request_errors(error) from None
        return enqueue(name, row)

    # Documented per deployment by `openapi_paths` (each with its own body schema), not by these generic routes.
    @router.post("/api/predict", status_code=202, response_model=PredictionAccepted, include_in_schema=False)
    async def predict_default(request: Request) -> PredictionAccepted:
        default = watcher.default()
        if default is None:
            raise HTTPException(404, "no default deployment is served")
        return await predict_for(default.deployment.name, request)

    @router.post(
        "/api/{deployment}/predict", status_code=202, response_model=PredictionAccepted, include_in_schema=False
    )
    async def predict(deployment: str, request: Request) -> PredictionAccepted:
        return await predict_for(deployment, request)

    @router.get(
        "/api/predict/{prediction_id}",
        response_model=PredictionStatus,
        responses={404: {"description": "prediction not found"}},
    )
    async def prediction(
        prediction_id: str,
        wait: float = Query(
            0.0,
            ge=0.0,
            le=MAX_WAIT_SECONDS,
            description=(
                "Long poll: answer as soon as the prediction is COMPLETE or ERROR, or after this many seconds"
            ),
        ),
    ) -> PredictionStatus:
        row = await (waits or worker).wait_finished(prediction_id, wait) if wait > 0 else queue.get(prediction_id)
        if row is None:
            raise HTTPException(404, "prediction not found")
        return status_of(row)

    def served_record(name: str) -> dict | None:
        served = watcher.current.get(name)
        if served is None:
            return None
        return {**served.record(), "runtime": served.runtime}

    @router.get(
        "/api/deployments",
        response_model=list[DeploymentSummary],
        summary="Every deployment, the model it follows and the version it serves",
    )
    def list_deployments() -> list[DeploymentSummary]:
        default = watcher.default()
        summaries = []
        for name, record in watcher.records.items():
            served = watcher.current.get(name)
            deployment = served.deployment if served else record.deployment
            summaries.append(
                DeploymentSummary(
                    name=name,
                    title=deployment.title,
                    units=deployment.units,
                    model=record.describe_model(),
                    default=default is not None and default.deployment.name == name,
                    fields=deployment.field_names,
                    served=served_record(name),
                )
            )
        return summaries

    def page(request: Request, template: str, name: str | None = None, **extra):
        if name is not None and name not in watcher.records:
            raise HTTPException(404, f"deployment {name!r} not found")
        served = watcher.current.get(name) if name else None
        deployments = {
            n: (watcher.current[n].deployment if n in watcher.current else r.deployment)
            for n, r in watcher.records.items()
        }
        return ctx.templates.TemplateResponse(
            request,
            template,
            {
                "deployments": deployments,
                "deployment": deployments.get(name) if name else None,
                "served": served,
                "served_all": watcher.current,
                **extra,
            },
        )

    @router.get("/deploy", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request):
        return page(request, "deploy_index.html")

    @router.get("/deploy/{name}", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, name: str):
        return page(request, "deploy_home.html", name)

    @router.get("/deploy/{name}/form", response_class=HTMLResponse, include_in_schema=False)
    def form(request: Request, name: str):
        deployment = (
            watcher.current[name].deployment
            if name in watcher.current
            else watcher.records[name].deployment
            if name in watcher.records
            else None
        )
        fields = (
            [{"name": f.name, "dtype": f.dtype, "required": f.required} for f in deployment.fields]
            if deployment is not None
            else []
        )
        return page(request, "deploy_form.html", name, fields=fields)

    ctx.openapi_hooks.append(lambda schema: openapi_paths(schema, watcher))
    return router


def openapi_paths(schema: dict, watcher: DeploymentsWatcher) -> None:
    """One documented POST per served deployment, with the exact body schema its route validates."""
    accepted = PredictionAccepted.model_json_schema()
    invalid = {"$ref": "#/components/schemas/HTTPValidationError"}
    targets = [(f"/api/{name}/predict", served) for name, served in sorted(watcher.current.items())]
    default = watcher.default()
    if default is not None:
        targets.append(("/api/predict", default))
    for path, served in targets:
        deployment = served.deployment
        operation = "predict_default" if path == "/api/predict" else f"predict_{deployment.name}"
        schema.setdefault("paths", {})[path] = {
            "post": {
                "tags": ["deploy"],
                "summary": f"Queue a prediction: {deployment.title}",
                "operationId": operation,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": deployment.schema.model_json_schema()}},
                },
                "responses": {
                    "202": {
                        "description": "Accepted: poll GET /api/predict/{prediction_id}",
                        "content": {"application/json": {"schema": accepted}},
                    },
                    "404": {"description": "The deployment was removed"},
                    "422": {
                        "description": "A field is missing, unknown or invalid (named in detail)",
                        "content": {"application/json": {"schema": invalid}},
                    },
                    "503": {"description": "No checked model version is deployed yet"},
                },
            }
        }
