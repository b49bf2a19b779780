"""The event-driven inference workflow: serialize → classify → filter over the images one sensor tick found.

What Step Functions chained as three Lambdas per image is a three-op job here, run once per batch of landings:
starting a run worker costs seconds, classifying an image milliseconds. Each image keeps the original's
contract. It fails where the original failed (INVALID_IMAGE in serialize or classify, THRESHOLD_CONFIDENCE_NOT_MET
in filter), loudly in the log of that step, and every outcome (passed, THRESHOLD_CONFIDENCE_NOT_MET,
INVALID_IMAGE, NO_CHAMPION) is written to the capture table by the last step, the batch in one transaction. An
image that fails does not stop the others; the last step fails the run after all are captured, naming every image
that did not pass.
"""

from collections import Counter
from datetime import UTC, datetime
from typing import NamedTuple

import dagster as dg
from pydantic import Field

from mlops_assets.common.constants import DUCKDB_POOL
from mlops_assets.common.keys import key
from mlops_assets.common.runs import run_id_of
from mlops_assets.scones import latecomers
from mlops_assets.scones.capture import Capture, captured_versions, record_many
from mlops_assets.scones.classifier import InvalidImage, NoChampion, SconesClassifier
from mlops_assets.scones.constants import CAPTURE_TABLE, DEFAULT_THRESHOLD, MODEL_NAME, SYSTEM
from mlops_assets.scones.imaging import MAX_IMAGE_BYTES
from mlops_assets.scones.workflow import ThresholdConfidenceNotMet, Verdict, filter_inference, serialize
from resources.mlflow_registry import MlflowRegistry
from resources.object_store import ObjectNotFound, ObjectStore
from resources.tables import Tables

CAPTURES_KEY = key(SYSTEM, "inference_captures")
# Events pass between the steps in memory (the run is one process): the platform's default IO manager writes
# DataFrames to DuckDB and has no business storing base64 images.
EVENT_IO = "scones_event_io"
event_io_resources = {EVENT_IO: dg.mem_io_manager}
NO_CHAMPION = "NO_CHAMPION"

inference_captures = dg.AssetSpec(
    CAPTURES_KEY,
    group_name=SYSTEM,
    kinds={"duckdb"},
    description=f"Every inference of the image workflow, passed or failed (table {CAPTURE_TABLE}): time, object "
    "key and ETag, [p_bicycle, p_motorcycle], model version and verdict. Appended by the "
    "scones_inference job, one row per landed object version.",
)


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
    take_latecomers: bool = Field(
        default=False,
        description="Also take the object versions that landed while this run waited to start and that no run "
        "holds (the landing sensor sets this; see mlops_assets/scones/latecomers.py)",
    )


class FilterSettings(dg.Config):
    threshold: float = Field(
        default=DEFAULT_THRESHOLD,
        ge=0.0,
        le=1.0,
        description="An inference passes when any class probability reaches this",
    )


class Outcome(NamedTuple):
    """What the workflow concluded for one landing; `failure` is the message of an image that did not pass."""

    landing: dict
    verdict: Verdict
    threshold: float
    model_version: str | None
    failure: str | None = None

    @property
    def version(self) -> tuple[str, str]:
        return self.landing["s3_key"], self.landing["etag"]


def _landed_at(landing: dict) -> datetime | None:
    return datetime.fromisoformat(landing["landed_at"]) if landing.get("landed_at") else None


def capture(context: dg.OpExecutionContext, warehouse: Tables, outcomes: list[Outcome]) -> list[Outcome]:
    """One capture row per object version not captured before, all in one transaction; returns those outcomes.

    The check and the insert happen in the one step that holds the warehouse pool slot, so a re-executed batch
    (or one overlapping an earlier run) adds no second row for a version."""
    if not outcomes:
        return []
    done = captured_versions(warehouse, [outcome.landing["s3_key"] for outcome in outcomes])
    fresh = [outcome for outcome in outcomes if outcome.version not in done]
    now = datetime.now(UTC)
    record_many(
        warehouse,
        [
            Capture(
                captured_at=now,
                landed_at=_landed_at(o.landing),
                s3_bucket=o.landing["s3_bucket"],
                s3_key=o.landing["s3_key"],
                etag=o.landing.get("etag") or None,
                verdict=o.verdict,
                threshold=o.threshold,
                model_name=MODEL_NAME if o.model_version else None,
                model_version=o.model_version,
                dagster_run_id=run_id_of(context),
            )
            for o in fresh
        ],
    )
    for outcome in outcomes:
        if outcome.version in done:
            context.log.info("%s@%s was captured by run %s: skipped", *outcome.version, done[outcome.version])
    if not fresh:
        return []
    verdicts = Counter(outcome.verdict.verdict for outcome in fresh)
    metadata = {
        "images": dg.MetadataValue.int(len(fresh)),
        "s3_keys": dg.MetadataValue.text(", ".join(outcome.landing["s3_key"] for outcome in fresh)),
        **{name: dg.MetadataValue.int(count) for name, count in sorted(verdicts.items())},
    }
    confidences = [o.verdict.max_confidence for o in fresh if o.verdict.max_confidence is not None]
    if confidences:
        metadata["min_max_confidence"] = dg.MetadataValue.float(min(confidences))
    context.log_event(dg.AssetMaterialization(CAPTURES_KEY, metadata=metadata))
    return fresh


def refuse(
    context: dg.OpExecutionContext,
    landing: dict,
    verdict: Verdict,
    model_version: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    message: str | None = None,
) -> Outcome:
    """An image that does not pass: said now in this step's log, captured and failing the run at the last step."""
    message = message or f"{verdict.verdict}: {landing['s3_key']}: {verdict.detail}"
    context.log.error(message)
    return Outcome(landing, verdict, threshold, model_version, message)


# serialize and classify touch neither DuckDB nor the pool: only the last step, which writes the whole batch in
# one transaction, takes the warehouse slot, so overlapping inference runs queue for milliseconds, not seconds.
@dg.op(
    out={"images": dg.Out(list, io_manager_key=EVENT_IO), "rejected": dg.Out(list, io_manager_key=EVENT_IO)},
    tags={"kind": "png"},
)
def serialize_images(context: dg.OpExecutionContext, config: ImageBatch, object_store: ObjectStore):
    """Lambda 1 per image: read it from the object store →
    {image_data (base64), s3_bucket, s3_key, inferences: []}."""
    images, rejected = [], []
    batch = [landing.model_dump() for landing in config.landings]
    if config.take_latecomers:
        batch += latecomers.take(context, object_store, batch)
    for landing in batch:
        verdict = None
        if landing["size"] > MAX_IMAGE_BYTES:
            verdict = Verdict.rejected(f"the object has {landing['size']:,} bytes; the limit is {MAX_IMAGE_BYTES:,}")
        else:
            try:
                data = object_store.get_bytes(landing["s3_key"])
            except ObjectNotFound as exc:
                verdict = Verdict.rejected(f"the object is gone ({exc})")
        if verdict is not None:
            rejected.append(refuse(context, landing, verdict))
            continue
        images.append({"landing": landing, "event": serialize(data, landing["s3_bucket"], landing["s3_key"])})
    yield dg.Output(images, "images", metadata={"images": dg.MetadataValue.int(len(images))})
    yield dg.Output(rejected, "rejected")


@dg.op(
    out={"images": dg.Out(list, io_manager_key=EVENT_IO), "rejected": dg.Out(list, io_manager_key=EVENT_IO)},
    tags={"kind": "scikit-learn"},
)
def classify_images(
    context: dg.OpExecutionContext,
    images: list,
    rejected: list,
    mlflow: MlflowRegistry,
    scones_classifier: SconesClassifier,
):
    """Lambda 2 per image: the champion model's `[p_bicycle, p_motorcycle]` (the original's endpoint call)."""
    rejected, classified = list(rejected), []
    with scones_classifier.session(mlflow, context.log.warning) as classifier:
        for image in images:
            landing = image["landing"]
            try:
                answer = classifier.classify(image["event"])
            except NoChampion as exc:
                rejected.append(refuse(context, landing, Verdict(None, None, None, None, NO_CHAMPION, str(exc))))
                continue
            except InvalidImage as exc:
                rejected.append(refuse(context, landing, Verdict.rejected(exc.reason), exc.model_version))
                continue
            event = {**image["event"], "inferences": answer.inferences}
            context.log.info(
                "%s → %s (%s v%s, answered by %s)",
                landing["s3_key"],
                event["inferences"],
                MODEL_NAME,
                answer.model_version,
                answer.answered_by,
            )
            classified.append({"landing": landing, "event": event, "model_version": answer.model_version})
    yield dg.Output(classified, "images")
    yield dg.Output(rejected, "rejected")


@dg.op(out=dg.Out(list, io_manager_key=EVENT_IO), pool=DUCKDB_POOL, tags={"kind": "duckdb"})
def filter_confidences(
    context: dg.OpExecutionContext, config: FilterSettings, images: list, rejected: list, warehouse: Tables
) -> list:
    """Lambda 3 per image: passes it on if any probability reaches the threshold, else
    THRESHOLD_CONFIDENCE_NOT_MET. Captures the batch, then fails if any image of it did not pass."""
    outcomes, events = list(rejected), {}
    for image in images:
        event, landing = image["event"], image["landing"]
        verdict = Verdict.from_inferences(event["inferences"], config.threshold)
        try:
            filter_inference(event, config.threshold)
        except ThresholdConfidenceNotMet as exc:
            outcomes.append(refuse(context, landing, verdict, image["model_version"], config.threshold, str(exc)))
            continue
        outcomes.append(Outcome(landing, verdict, config.threshold, image["model_version"]))
        events[landing["s3_key"], landing["etag"]] = event
    fresh = capture(context, warehouse, outcomes)
    # An image captured by an earlier run is that run's verdict: neither passed on nor failed again here.
    failures = [outcome.failure for outcome in fresh if outcome.failure]
    passed = [events[outcome.version] for outcome in fresh if outcome.version in events]
    if failures:
        total = len(passed) + len(failures)
        head = failures[0] if len(failures) == 1 else f"{len(failures)} of {total} images did not pass:\n"
        raise dg.Failure(
            description=head + ("" if len(failures) == 1 else "\n".join(failures)),
            allow_retries=False,
            metadata={
                "failed": len(failures),
                "passed": len(passed),
                "failures": dg.MetadataValue.text("\n".join(failures)),
            },
        )
    return passed


@dg.graph
def image_workflow():
    images, rejected = serialize_images()
    classified, rejected = classify_images(images, rejected)
    filter_confidences(classified, rejected)
