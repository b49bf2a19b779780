"""The event-driven inference workflow: serialize → classify → filter over the images one sensor tick found.

What Step Functions chained as three Lambdas per image is a three-op job here, run once per batch of landings:
starting a run worker costs seconds, classifying an image milliseconds. Each image keeps the original's
contract. It fails where the original failed (INVALID_IMAGE in serialize or classify, THRESHOLD_CONFIDENCE_NOT_MET
in filter), loudly in the log of that step, and every outcome (passed, THRESHOLD_CONFIDENCE_NOT_MET,
INVALID_IMAGE, NO_CHAMPION) is written to the capture table. An image that fails does not stop the others; the
last step fails the run after all are captured, naming every image that did not pass.
"""


from collections import Counter
from datetime import datetime, timezone

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from mlops_assets.common.champion import ChampionLoader
from mlops_assets.common.constants import DUCKDB_POOL
from mlops_assets.scones.capture import Capture, captured_versions, record_many
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
                "scones_inference job, one row per landed object version.")


class ImageLanding(dg.Config):
    """The object that landed; the sensor fills this in from the object store's listing."""

    s3_bucket: str = Field(description="Bucket (or 'local' for the folder store) the image landed in")
    s3_key: str = Field(description="Object key, e.g. scones/incoming/bike.png")
    etag: str = Field(default="", description="Content hash of the object version that landed")
    size: int = Field(default=-1, description="Bytes reported by the listing; -1 when unknown")
    landed_at: str = Field(default="", description="ISO-8601 time the object was last modified")


class ImageBatch(dg.Config):
    """The object versions one tick of the landing sensor found."""

    landings: list[ImageLanding] = Field(description="One entry per new object version under scones/incoming/")


class FilterSettings(dg.Config):
    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0.0, le=1.0,
                             description="An inference passes when any class probability reaches this")


# The champion model, loaded once per version: a run must not pay seconds of loading for one image.
CHAMPIONS = ChampionLoader(MODEL_NAME)


def _landed_at(landing: dict) -> datetime | None:
    return datetime.fromisoformat(landing["landed_at"]) if landing.get("landed_at") else None


def capture(context: dg.OpExecutionContext, warehouse: DuckDBResource,
            outcomes: list[tuple[dict, Verdict, float, str | None]]) -> None:
    """One capture row per (landing, verdict, threshold, model version), written in one transaction."""
    if not outcomes:
        return
    now = datetime.now(timezone.utc)
    rows = [Capture(captured_at=now, landed_at=_landed_at(landing), s3_bucket=landing["s3_bucket"],
                    s3_key=landing["s3_key"], etag=landing.get("etag") or None, verdict=verdict,
                    threshold=threshold, model_name=MODEL_NAME if version else None, model_version=version,
                    dagster_run_id=context.run_id)
            for landing, verdict, threshold, version in outcomes]
    with warehouse.get_connection() as connection:
        record_many(connection, rows)
    verdicts = Counter(verdict.verdict for _, verdict, _, _ in outcomes)
    metadata = {"images": dg.MetadataValue.int(len(rows)),
                "s3_keys": dg.MetadataValue.text(", ".join(landing["s3_key"] for landing, *_ in outcomes)),
                **{name: dg.MetadataValue.int(count) for name, count in sorted(verdicts.items())}}
    confidences = [verdict.max_confidence for _, verdict, _, _ in outcomes if verdict.max_confidence is not None]
    if confidences:
        metadata["min_max_confidence"] = dg.MetadataValue.float(min(confidences))
    context.log_event(dg.AssetMaterialization(CAPTURES_KEY, metadata=metadata))


def failure_message(verdict: Verdict, landing: dict) -> str:
    return f"{verdict.verdict}: {landing['s3_key']}: {verdict.detail}"


def refuse(context: dg.OpExecutionContext, failures: list[str], message: str) -> None:
    """An image that does not pass: said now in this step's log, and failing the run at its last step."""
    context.log.error(message)
    failures.append(message)


@dg.op(out={"images": dg.Out(list, io_manager_key=EVENT_IO), "failures": dg.Out(list, io_manager_key=EVENT_IO)},
       pool=DUCKDB_POOL, tags={"kind": "png"})
def serialize_images(context: dg.OpExecutionContext, config: ImageBatch, object_store: ObjectStore,
                     warehouse: DuckDBResource):
    """Lambda 1 per image: read it from the object store → {image_data (base64), s3_bucket, s3_key, inferences: []}.

    An object version that already has a capture row (a re-executed run) is skipped: each is classified once."""
    landings = [landing.model_dump() for landing in config.landings]
    with warehouse.get_connection() as connection:
        done = captured_versions(connection, [landing["s3_key"] for landing in landings])
    images, failures, rejected = [], [], []
    for landing in landings:
        if (landing["s3_key"], landing["etag"]) in done:
            context.log.info("%s@%s was captured by run %s: skipped", landing["s3_key"], landing["etag"],
                             done[landing["s3_key"], landing["etag"]])
            continue
        verdict = None
        if landing["size"] > MAX_IMAGE_BYTES:
            verdict = Verdict.rejected(f"the object has {landing['size']:,} bytes; the limit is {MAX_IMAGE_BYTES:,}")
        else:
            try:
                data = object_store.get_bytes(landing["s3_key"])
            except ObjectNotFound as exc:
                verdict = Verdict.rejected(f"the object is gone ({exc})")
        if verdict is not None:
            rejected.append((landing, verdict, DEFAULT_THRESHOLD, None))
            refuse(context, failures, failure_message(verdict, landing))
            continue
        images.append({"landing": landing, "event": serialize(data, landing["s3_bucket"], landing["s3_key"])})
    capture(context, warehouse, rejected)
    yield dg.Output(images, "images", metadata={"images": dg.MetadataValue.int(len(images))})
    yield dg.Output(failures, "failures")


@dg.op(out={"images": dg.Out(list, io_manager_key=EVENT_IO), "failures": dg.Out(list, io_manager_key=EVENT_IO)},
       pool=DUCKDB_POOL, tags={"kind": "scikit-learn"})
def classify_images(context: dg.OpExecutionContext, images: list, failures: list, mlflow: MlflowRegistry,
                    warehouse: DuckDBResource):
    """Lambda 2 per image: the champion model's `[p_bicycle, p_motorcycle]` (the original's endpoint call)."""
    failures, rejected, classified = list(failures), [], []
    champion = CHAMPIONS.get(mlflow) if images else None
    for image in images:
        landing = image["landing"]
        if champion is None:
            verdict = Verdict(None, None, None, None, NO_CHAMPION,
                              f"no 'champion' version of {MODEL_NAME}: materialize scones/image_classifier first")
            rejected.append((landing, verdict, DEFAULT_THRESHOLD, None))
            refuse(context, failures, failure_message(verdict, landing))
            continue
        model, version = champion.model, champion.number
        try:
            event = classify(image["event"], model)
        except ImageRejected as exc:
            verdict = Verdict.rejected(exc.reason)
            rejected.append((landing, verdict, DEFAULT_THRESHOLD, version))
            refuse(context, failures, failure_message(verdict, landing))
            continue
        context.log.info("%s → %s (%s v%s)", landing["s3_key"], event["inferences"], MODEL_NAME, version)
        classified.append({"landing": landing, "event": event, "model_version": version})
    capture(context, warehouse, rejected)
    yield dg.Output(classified, "images")
    yield dg.Output(failures, "failures")


@dg.op(out=dg.Out(list, io_manager_key=EVENT_IO), pool=DUCKDB_POOL, tags={"kind": "duckdb"})
def filter_confidences(context: dg.OpExecutionContext, config: FilterSettings, images: list, failures: list,
                       warehouse: DuckDBResource) -> list:
    """Lambda 3 per image: passes it on if any probability reaches the threshold, else
    THRESHOLD_CONFIDENCE_NOT_MET. Fails after capturing the batch if any image of it did not pass."""
    failures, outcomes, passed = list(failures), [], []
    for image in images:
        event, landing = image["event"], image["landing"]
        outcomes.append((landing, Verdict.from_inferences(event["inferences"], config.threshold), config.threshold,
                         image["model_version"]))
        try:
            passed.append(filter_inference(event, config.threshold))
        except ThresholdConfidenceNotMet as exc:
            refuse(context, failures, str(exc))
    capture(context, warehouse, outcomes)
    if failures:
        total = len(passed) + len(failures)
        head = failures[0] if len(failures) == 1 else f"{len(failures)} of {total} images did not pass:\n"
        raise dg.Failure(description=head + ("" if len(failures) == 1 else "\n".join(failures)),
                         allow_retries=False, metadata={"failed": len(failures), "passed": len(passed),
                                                        "failures": dg.MetadataValue.text("\n".join(failures))})
    return passed


@dg.graph
def image_workflow():
    images, failures = serialize_images()
    classified, failures = classify_images(images, failures)
    filter_confidences(classified, failures)
