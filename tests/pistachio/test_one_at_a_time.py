"""The sensor leaves a file version to the run that already has it (the bootstrap's, run in-process), and the
run queue, not the sensor, keeps Pistachio runs one at a time (tests/test_wiring.py checks the instance)."""

from __future__ import annotations

from mlops_assets.common.runs import ONE_AT_A_TIME
from mlops_assets.pistachio.automation import SOURCE_ETAG_TAG, SOURCE_KEY_TAG, TRAINING_JOB
from mlops_assets.pistachio.partitions import snapshot_partitions
from mlops_assets.pistachio.snapshot_files import snapshot_object_key
from tests.pistachio.test_pipeline import evaluate_sensor


def test_a_file_version_that_has_a_run_is_not_requested_again(bootstrapped):
    store, instance = bootstrapped.resource("object_store"), bootstrapped.instance
    key = snapshot_object_key("pistachio_20230807")
    store.put_bytes(key, store.get_bytes(snapshot_object_key("pistachio_20230724")), "text/csv")
    try:
        first = evaluate_sensor(bootstrapped)
        [request] = first.run_requests
        assert request.tags[SOURCE_KEY_TAG] == key
        # What the bootstrap does with the request: the partition, then a run carrying the request's tags.
        instance.add_dynamic_partitions(snapshot_partitions.name, ["pistachio_20230807"])
        job = bootstrapped.defs.resolve_job_def(TRAINING_JOB)
        assert job.tags[ONE_AT_A_TIME] == "pistachio"  # the queue serializes it with every other Pistachio run
        run = instance.create_run_for_job(job, tags={**job.tags, **request.tags})
        assert evaluate_sensor(bootstrapped).run_requests == []

        instance.delete_run(run.run_id)
        [again] = evaluate_sensor(bootstrapped).run_requests
        assert again.partition_key == "pistachio_20230807"
        assert again.tags[SOURCE_ETAG_TAG] == request.tags[SOURCE_ETAG_TAG]
    finally:
        store.delete(key)
        instance.delete_dynamic_partition(snapshot_partitions.name, "pistachio_20230807")
