"""The event-driven inference workflow: serialize → classify → filter, one run per image that lands.

What Step Functions chained as three Lambdas is a three-op job here. Each step fails where the original would
have failed, loudly, and every outcome (passed, THRESHOLD_CONFIDENCE_NOT_MET, INVALID_IMAGE, NO_CHAMPION) is
first written to the capture table, so nothing that landed goes unaccounted for.
"""


import threading
from datetime import datetime, timezone
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from mlops_assets.common.constants import DUCKDB_POOL
from mlops_assets.scones.capture import Capture, record
from mlops_assets.scones.constants import CAPTURE_TABLE, DEFAULT_THRESHOLD, MODEL_NAME, SYSTEM
from mlops_assets.scones.imaging import MAX_IMAGE_BYTES, ImageRejected
from mlops_assets.scones.workflow import ThresholdConfidenceNotMet, Verdict, classify, filter_inference, serialize
from resources.mlflow_registry import MlflowRegistry
from resources.object_store import ObjectNotFound, ObjectStore

CAPTURES_KEY = dg.AssetKey([SYSTEM, "inference_captures"])
# Events pass between the steps in memory (the run is one process): the platform's default IO manager writes
# DataFrames to DuckDB and has no business storing base64 images.
EVENT_IO = "scones_event_io"
event_io_resources = {EVENT_IO: dg.mem_io_manager}
NO_CHAMPION = "NO_CHAMPION"

inference_captures = dg.AssetSpec(
    CAPTURES_KEY, group_name=SYSTEM, kinds={"duckdb"},
    description=f"Every inference of the image workflow, passed or failed (table {CAPTURE_TABLE}): time, object "
                "key and ETag, [p_bicycle, p_motorcycle], model version and verdict. Appended by the "
                "scones_inference job, one row per landed image.")


class ImageLanding(dg.Config):
    """The object that landed; the sensor fills this in from the object store's listing."""

    s3_bucket: str = Field(description="Bucket (or 'local' for the folder store) the image landed in")
    s3_key: str = Field(description="Object key, e.g. scones/incoming/bike.png")
    etag: str = Field(default="", description="Content hash of the object version that landed")
    size: int = Field(default=-1, description="Bytes reported by the listing; -1 when unknown")
    landed_at: str = Field(default="", description="ISO-8601 time the object was last modified")


class FilterSettings(dg.Config):
    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0.0, le=1.0,
                             description="An inference passes when any class probability reaches this")


class _ChampionCache:
    """The champion model, loaded once per version: a run must not pay seconds of loading for one image."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str], Any] = {}

    def get(self, registry: MlflowRegistry) -> tuple[Any, str] | None:
        version = registry.version_by_alias(MODEL_NAME)
        if version is None:
            return None
        key = (registry.tracking_uri, str(version.version))
        with self._lock:
            if key not in self._loaded:
                model = registry.load_sklearn(f"models:/{MODEL_NAME}/{version.version}")
                self._loaded = {key: model}  # keep only the current champion in memory
            return self._loaded[key], str(version.version)


CHAMPIONS = _ChampionCache()


def _landed_at(landing: dict) -> datetime | None:
    return datetime.fromisoformat(landing["landed_at"]) if landing.get("landed_at") else None


def capture(context: dg.OpExecutionContext, warehouse: DuckDBResource, landing: dict, verdict: Verdict,
            threshold: float, model_version: str | None) -> None:
    row = Capture(captured_at=datetime.now(timezone.utc), landed_at=_landed_at(landing),
                  s3_bucket=landing["s3_bucket"], s3_key=landing["s3_key"], etag=landing.get("etag") or None,
                  verdict=verdict, threshold=threshold, model_name=MODEL_NAME if model_version else None,
                  model_version=model_version, dagster_run_id=context.run_id)
    with warehouse.get_connection() as connection:
        record(connection, row)
    metadata = {"s3_key": dg.MetadataValue.text(landing["s3_key"]), "verdict": dg.MetadataValue.text(verdict.verdict)}
    if verdict.max_confidence is not None:
        metadata["max_confidence"] = dg.MetadataValue.float(verdict.max_confidence)
    context.log_event(dg.AssetMaterialization(CAPTURES_KEY, metadata=metadata))


def fail(verdict: Verdict, landing: dict) -> dg.Failure:
    return dg.Failure(description=f"{verdict.verdict}: {landing['s3_key']}: {verdict.detail}",
                      metadata={"s3_key": landing["s3_key"], "verdict": verdict.verdict}, allow_retries=False)


@dg.op(out={"event": dg.Out(dict, io_manager_key=EVENT_IO), "landing": dg.Out(dict, io_manager_key=EVENT_IO)},
       pool=DUCKDB_POOL, tags={"kind": "s3"})
def serialize_image(context: dg.OpExecutionContext, config: ImageLanding, object_store: ObjectStore,
                    warehouse: DuckDBResource):
    """Lambda 1: read the image from the object store → {image_data (base64), s3_bucket, s3_key, inferences: []}."""
    landing = config.model_dump()
    if config.size > MAX_IMAGE_BYTES:
        verdict = Verdict.rejected(f"the object has {config.size:,} bytes; the limit is {MAX_IMAGE_BYTES:,}")
    else:
        try:
            data = object_store.get_bytes(config.s3_key)
            verdict = None
        except ObjectNotFound as exc:
            verdict = Verdict.rejected(f"the object is gone ({exc})")
    if verdict is not None:
        capture(context, warehouse, landing, verdict, DEFAULT_THRESHOLD, None)
        raise fail(verdict, landing)
    yield dg.Output(serialize(data, config.s3_bucket, config.s3_key), "event",
                    metadata={"bytes": dg.MetadataValue.int(len(data))})
    yield dg.Output(landing, "landing")


@dg.op(out={"event": dg.Out(dict, io_manager_key=EVENT_IO),
           "model_version": dg.Out(str, io_manager_key=EVENT_IO)}, pool=DUCKDB_POOL, tags={"kind": "sklearn"})
def classify_image(context: dg.OpExecutionContext, event: dict, landing: dict, mlflow: MlflowRegistry,
                   warehouse: DuckDBResource):
    """Lambda 2: the champion model's `[p_bicycle, p_motorcycle]` for the image (the original's endpoint call)."""
    champion = CHAMPIONS.get(mlflow)
    if champion is None:
        verdict = Verdict(None, None, None, None, NO_CHAMPION,
                          f"no 'champion' version of {MODEL_NAME}: materialize scones/image_classifier first")
        capture(context, warehouse, landing, verdict, DEFAULT_THRESHOLD, None)
        raise fail(verdict, landing)
    model, version = champion
    try:
        classified = classify(event, model)
    except ImageRejected as exc:
        verdict = Verdict.rejected(exc.reason)
        capture(context, warehouse, landing, verdict, DEFAULT_THRESHOLD, version)
        raise fail(verdict, landing) from None
    context.log.info("%s → %s (%s v%s)", event["s3_key"], classified["inferences"], MODEL_NAME, version)
    yield dg.Output(classified, "event")
    yield dg.Output(version, "model_version")


@dg.op(out=dg.Out(dict, io_manager_key=EVENT_IO), pool=DUCKDB_POOL, tags={"kind": "duckdb"})
def filter_confidence(context: dg.OpExecutionContext, config: FilterSettings, event: dict, landing: dict,
                      model_version: str, warehouse: DuckDBResource) -> dict:
    """Lambda 3: pass the inference on if any probability reaches the threshold, else THRESHOLD_CONFIDENCE_NOT_MET."""
    verdict = Verdict.from_inferences(event["inferences"], config.threshold)
    capture(context, warehouse, landing, verdict, config.threshold, model_version)
    try:
        return filter_inference(event, config.threshold)
    except ThresholdConfidenceNotMet as exc:
        raise dg.Failure(description=str(exc), allow_retries=False, metadata={
            "s3_key": event["s3_key"], "max_confidence": dg.MetadataValue.float(verdict.max_confidence),
            "threshold": dg.MetadataValue.float(config.threshold)}) from None


@dg.graph
def image_workflow():
    event, landing = serialize_image()
    classified, version = classify_image(event, landing)
    filter_confidence(classified, landing, version)
