"""Latecomers: object versions that land while an inference run waits to start are taken by that run.

The landing sensor requests a run for what it found and then requests nothing while that run waits to start
(queued, or its run worker loading the code location). Without more, what lands meanwhile waits for the run to
start, for the daemon's next sensor loop (every 5 s) and for the start of another run worker: the tail of the
trickle. Instead, the first step of the run lists `scones/incoming/` again and takes every object version that
no inference run has claimed yet, the latecomers. It claims them in the run's tag `scones/latecomers` before
reading any of them, and the sensor waits for that tag as it waits for the run to start: its next tick leaves
the claimed versions out. So each version is taken by one run, and a landing waits for at most one run start.

A retry (or a re-execution) of a run inherits the claim of its parent, so it re-classifies the same latecomers
instead of taking new ones; the capture table still writes one row per object version whatever happens.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import dagster as dg

from mlops_assets.scones.constants import INCOMING_PREFIX
from resources.object_store import ObjectInfo, ObjectStore

JOB_NAME = "scones_inference"
TAG = "scones/latecomers"
# The config flag the sensor sets on the last run of a tick; runs launched by hand take no latecomers.
FLAG = "take_latecomers"
# S3 reports LastModified to the second and listings may lag a little: re-list this far back each tick and
# skip what the cursor already saw, so an object landing in the same second as the previous tick is not lost.
LOOKBACK = timedelta(seconds=30)
# A run stays short: what lands beyond this while it waits to start is left to the sensor's next run.
MAX_LATECOMERS = 100
WAITING_TO_START = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING]


def bucket_of(store: ObjectStore) -> str:
    # The original's events name the bucket; the folder store has none, so its events say "local".
    return getattr(store, "bucket", "local")


def landing(info: ObjectInfo, bucket: str) -> dict:
    return {
        "s3_bucket": bucket,
        "s3_key": info.key,
        "etag": info.etag,
        "size": info.size,
        "landed_at": info.last_modified.isoformat(),
    }


def token(landing: dict) -> str:
    """The object version of a landing, as ObjectInfo.version_token names it."""
    return f"{landing['s3_key']}@{landing['etag']}"


def encode(landings: list[dict]) -> str:
    # Compact: a tag of a run is shown in the UI, and a burst may claim up to MAX_LATECOMERS versions.
    rows = [[item["s3_key"], item["etag"], item["size"], item["landed_at"]] for item in landings]
    return json.dumps(rows, separators=(",", ":"))


def decode(text: str | None, bucket: str) -> list[dict]:
    if not text:
        return []
    return [
        {"s3_bucket": bucket, "s3_key": key, "etag": etag, "size": size, "landed_at": landed_at}
        for key, etag, size, landed_at in json.loads(text)
    ]


def batch_config(run: dg.DagsterRun) -> dict:
    return (run.run_config or {}).get("ops", {}).get("serialize_images", {}).get("config", {})


def takes_latecomers(run: dg.DagsterRun) -> bool:
    return bool(batch_config(run).get(FLAG))


def claims(instance: dg.DagsterInstance, since: datetime, but: str | None = None) -> dict[str, str]:
    """Version token → id of the inference run that holds it, in its batch or as a latecomer, over the runs
    updated since `since` (a run claims a version after it landed, and every claim updates the run)."""
    held: dict[str, str] = {}
    for record in instance.get_run_records(dg.RunsFilter(job_name=JOB_NAME, updated_after=since)):
        run = record.dagster_run
        if run.run_id == but:
            continue
        for item in [*batch_config(run).get("landings", []), *decode(run.tags.get(TAG), "")]:
            held[token(item)] = run.run_id
    return held


def run_in_the_way(instance: dg.DagsterInstance) -> str | None:
    """Why the sensor must not request a run now: an inference run that waits to start, or that started but has
    not claimed its latecomers yet (what lands now is that run's). None when there is none."""
    records = instance.get_run_records(
        dg.RunsFilter(job_name=JOB_NAME, statuses=[*WAITING_TO_START, dg.DagsterRunStatus.STARTED])
    )
    for record in records:
        run = record.dagster_run
        if run.status in WAITING_TO_START:
            return f"inference run {run.run_id} has not started yet: what lands meanwhile is that run's"
        if takes_latecomers(run) and TAG not in run.tags:
            return f"inference run {run.run_id} is taking what landed while it started"
    return None


def take(context: dg.OpExecutionContext, object_store: ObjectStore, batch: list[dict]) -> list[dict]:
    """The latecomers of this run, claimed in its tags: inherited from the run it retries, or every object
    version under scones/incoming/ that landed since the run was requested and that no run holds."""
    instance, run = context.instance, context.run
    bucket = batch[0]["s3_bucket"] if batch else bucket_of(object_store)
    inherited = run.tags.get(TAG)
    parent = instance.get_run_by_id(run.parent_run_id) if run.parent_run_id and inherited is None else None
    if parent is not None:
        inherited = parent.tags.get(TAG)
    if inherited is not None:
        taken = decode(inherited, bucket)
        context.log.info("%d latecomer(s) claimed by the run this one re-executes", len(taken))
    else:
        since = instance.get_run_record_by_id(run.run_id).create_timestamp - LOOKBACK
        try:
            listed = object_store.list_objects(INCOMING_PREFIX, since_last_modified=since)
        except Exception as exc:  # the batch itself does not depend on the listing: classify it anyway
            context.log.warning("no latecomers taken: listing %s failed (%s)", INCOMING_PREFIX, exc)
            listed = []
        held = claims(instance, since - LOOKBACK, but=run.run_id)
        own = {token(item) for item in batch}
        taken = [
            landing(info, bucket)
            for info in listed
            if not info.key.endswith("/") and info.version_token not in own and info.version_token not in held
        ][:MAX_LATECOMERS]
        if taken:
            context.log.info("took %d latecomer(s): %s", len(taken), ", ".join(item["s3_key"] for item in taken))
    # The claim comes before any work: the sensor waits for this tag, then leaves these versions out.
    instance.add_run_tags(run.run_id, {TAG: encode(taken)})
    return taken
