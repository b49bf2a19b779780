"""Scones automation: training, the inference workflow triggered by landings, the monitoring chart."""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg

from mlops_assets.common.keys import key
from mlops_assets.scones.constants import INCOMING_PREFIX, SYSTEM
from mlops_assets.scones.inference import event_io_resources, image_workflow
from mlops_assets.scones.latecomers import (
    FLAG,
    JOB_NAME,
    LOOKBACK,
    bucket_of,
    claims,
    landing,
    run_in_the_way,
)
from resources.object_store import ObjectInfo, ObjectStore

training_job = dg.define_asset_job(
    "scones_training",
    selection=[key(SYSTEM, "cifar100_archive"), key(SYSTEM, "labelled_images"), key(SYSTEM, "image_classifier")],
    description="Extract the bicycle/motorcycle images from CIFAR-100, train, register and gate the classifier.",
)

monitoring_job = dg.define_asset_job(
    "scones_monitoring",
    selection=[key(SYSTEM, "confidence_chart")],
    description="Redraw the max-confidence chart from the capture table.",
)

inference_job = image_workflow.to_job(
    name=JOB_NAME,
    description="The original Step Functions workflow per image: serialize → classify → filter (threshold 0.85, "
    "op config of filter_confidences), over the object versions one tick of scones_incoming_images "
    "found.",
    # One process for the three short steps: starting a process per step would cost seconds per image.
    executor_def=dg.in_process_executor,
    tags={"system": SYSTEM},
)

monitoring_schedule = dg.ScheduleDefinition(
    job=monitoring_job,
    cron_schedule="*/15 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes: the monitoring chart catches up with the captured inferences.",
)


@dataclass
class LandingCursor:
    """The newest modification time seen, and the object versions seen within LOOKBACK of it."""

    newest: datetime | None = None
    seen: dict[str, str] = field(default_factory=dict)  # version token (key@etag) → last_modified ISO

    @classmethod
    def parse(cls, text: str | None) -> "LandingCursor":
        if not text:
            return cls()
        data = json.loads(text)
        return cls(datetime.fromisoformat(data["newest"]) if data.get("newest") else None, dict(data["seen"]))

    def dump(self) -> str:
        return json.dumps({"newest": self.newest.isoformat() if self.newest else None, "seen": self.seen})

    @property
    def list_since(self) -> datetime | None:
        return None if self.newest is None else self.newest - LOOKBACK

    def advance(self, listed: list[ObjectInfo]) -> tuple[list[ObjectInfo], "LandingCursor"]:
        """The listed object versions not seen before, and the cursor that remembers them."""
        fresh = [info for info in listed if info.version_token not in self.seen]
        seen = {**self.seen, **{info.version_token: info.last_modified.isoformat() for info in listed}}
        times = [info.last_modified for info in listed] + ([self.newest] if self.newest else [])
        newest = max(times) if times else None
        horizon = newest - LOOKBACK if newest else None
        seen = {
            token: when for token, when in seen.items() if horizon is None or datetime.fromisoformat(when) >= horizon
        }
        return fresh, LandingCursor(newest, seen)


# A run worker costs seconds to start and an image milliseconds to classify: one run per tick, however many
# images landed, up to this many (a bigger burst becomes several runs, so that one run stays short).
MAX_BATCH = 100


def batch_request(batch: list[ObjectInfo], bucket: str, take_latecomers: bool = False) -> dg.RunRequest:
    # The run key names the exact set of object versions: a tick evaluated twice cannot launch the batch twice.
    tokens = sorted(info.version_token for info in batch)
    digest = hashlib.sha256("\n".join(tokens).encode()).hexdigest()[:32]
    tags = {
        "scones/images": str(len(batch)),
        # A failed inference run is a verdict on an image (weak confidence, invalid file), the same on every
        # try: the instance's run retries stay for crashes only.
        "dagster/retry_on_asset_or_op_failure": "false",
    }
    if len(batch) == 1:
        tags.update({"scones/key": batch[0].key, "scones/etag": batch[0].etag})
    return dg.RunRequest(
        run_key=tokens[0] if len(batch) == 1 else f"batch-{digest}",
        tags=tags,
        run_config={
            "ops": {
                "serialize_images": {
                    "config": {"landings": [landing(info, bucket) for info in batch], FLAG: take_latecomers}
                }
            }
        },
    )


@dg.sensor(
    job=inference_job,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"One inference run per tick for the new object versions under {INCOMING_PREFIX}; each "
    "version (key@etag) is requested once; no new run while one waits to start: what lands meanwhile is "
    "taken by that run when it starts (mlops_assets/scones/latecomers.py).",
)
def scones_incoming_images(context: dg.SensorEvaluationContext, object_store: ObjectStore):
    # The check comes before the listing: once no run is in the way, every claim of a latecomer is written.
    in_the_way = run_in_the_way(context.instance)
    if in_the_way:
        return dg.SkipReason(in_the_way)
    cursor = LandingCursor.parse(context.cursor)
    listed = object_store.list_objects(INCOMING_PREFIX, since_last_modified=cursor.list_since)
    listed = [info for info in listed if not info.key.endswith("/")]  # folder markers some S3 tools create
    fresh, cursor = cursor.advance(listed)
    context.update_cursor(cursor.dump())
    if fresh:
        # Versions a run took as latecomers (or holds in its batch) are that run's: not requested again.
        held = claims(context.instance, (cursor.list_since or datetime.now(UTC)) - LOOKBACK)
        fresh = [info for info in fresh if info.version_token not in held]
    if not fresh:
        return dg.SkipReason(f"no new object under {INCOMING_PREFIX}")
    bucket = bucket_of(object_store)
    batches = [fresh[start : start + MAX_BATCH] for start in range(0, len(fresh), MAX_BATCH)]
    # Only the last run of the tick takes latecomers: two runs taking them at once could both take one.
    return [batch_request(batch, bucket, take_latecomers=batch is batches[-1]) for batch in batches]


defs = dg.Definitions(
    jobs=[training_job, monitoring_job, inference_job],
    schedules=[monitoring_schedule],
    sensors=[scones_incoming_images],
    resources=event_io_resources,
)

# The monitoring schedule redraws the chart every 15 minutes: older than two of its ticks, the chart is stale.
FRESHNESS = {
    key(SYSTEM, "confidence_chart"): dg.FreshnessPolicy.time_window(
        fail_window=dt.timedelta(minutes=30), warn_window=dt.timedelta(minutes=20)
    )
}
