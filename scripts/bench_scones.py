"""Benchmark of the Scones image workflow on a temporary MLOPS_HOME (local object store) with the real data.

1. Trains the classifier once through the `scones_training` job (prints training time and test accuracy).
2. Classification latency per image: decode + 32x32 + champion `predict_proba`, one image at a time over the
   200 test PNGs (the work of the classify step and of POST /scones/classify).
3. Landing → captured result over N images: a thread drops test PNGs under `scones/incoming/` every
   --gap seconds while the main thread plays the sensor daemon: every second (the sensor's
   minimum_interval_seconds) it evaluates `scones_incoming_images` and executes each run request in-process.
   The time from put_bytes to the capture row's `captured_at` includes the wait for the next tick.

    .venv/bin/python scripts/bench_scones.py [--images 50] [--gap 3.0]
"""

import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import typer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import percentile, standalone_environment  # noqa: E402


def percentiles(values: list[float]) -> str:
    return (f"mean {statistics.mean(values):8.1f}  p50 {percentile(values, 50):8.1f}  "
            f"p95 {percentile(values, 95):8.1f}  max {max(values):8.1f}  (n={len(values)})")


def main(images: int = typer.Option(50, help="Images dropped for the landing → capture measurement"),
         gap: float = typer.Option(3.0, help="Seconds between two drops; a run takes ~1-2 s here, faster drops queue up"),
         data_dir: Path = typer.Option(REPO.parent / "shared" / "data", help="Folder with cifar100-subset/")):
    home = Path(tempfile.mkdtemp(prefix="bench-scones-"))
    os.environ.update(standalone_environment(home / "mlops", data_dir.resolve()))
    import logging

    import dagster as dg
    import duckdb

    logging.getLogger("dagster").setLevel(logging.WARNING)
    from mlops_assets.definitions import defs
    from mlops_assets.scones.constants import CAPTURE_TABLE, INCOMING_PREFIX, MODEL_NAME
    from mlops_assets.scones.imaging import image_row
    from resources import build_object_store, build_registry
    from resources.settings import PlatformSettings
    from sensors.scones import scones_incoming_images, training_job

    settings = PlatformSettings.from_env()
    definitions = defs()
    store, registry = build_object_store(settings), build_registry(settings)
    test_pngs = sorted((data_dir / "scones" / "test").glob("*.png"))
    print(f"state in {home}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")

    with dg.instance_for_test(temp_dir=str(home)) as instance:
        started = time.perf_counter()
        definitions.resolve_job_def(training_job.name).execute_in_process(instance=instance, raise_on_error=True)
        job_seconds = time.perf_counter() - started
        meta = instance.get_latest_materialization_event(
            dg.AssetKey(["scones", "image_classifier"])).asset_materialization.metadata
        print(f"\ntraining job (extract 1,200 PNGs, train, evaluate, log, register, gate): {job_seconds:.1f} s")
        print(f"  fit on 1,000 images: {meta['train_seconds'].value:.1f} s; test accuracy "
              f"{meta['test_accuracy'].value:.4f} (original ResNet: 0.84375 final, 0.875 best); "
              f"pass rate at 0.85: {meta['threshold_pass_rate'].value:.3f}")

        model = registry.load_sklearn(f"models:/{MODEL_NAME}/{registry.version_by_alias(MODEL_NAME).version}")
        payloads = [path.read_bytes() for path in test_pngs]
        model.predict_proba(image_row(payloads[0]))  # warm-up
        latencies = []
        for data in payloads:
            tick = time.perf_counter()
            model.predict_proba(image_row(data))
            latencies.append((time.perf_counter() - tick) * 1000)
        print(f"\nclassification latency per image, ms (decode + resize + predict_proba, 1 image per call):\n  "
              f"{percentiles(latencies)}")

        job = definitions.resolve_job_def("scones_inference")
        landed: dict[str, datetime] = {}
        keys = [f"{INCOMING_PREFIX}bench-{i:03d}-{test_pngs[i % len(test_pngs)].name}" for i in range(images)]

        def drop() -> None:
            for i, key in enumerate(keys):
                landed[key] = datetime.now(timezone.utc)
                store.put_bytes(key, payloads[i % len(payloads)], "image/png")
                time.sleep(gap)

        dropper = threading.Thread(target=drop)
        dropper.start()
        cursor, runs, failed, run_seconds = None, 0, 0, []
        deadline = time.monotonic() + images * gap + 120
        while time.monotonic() < deadline and runs < images:
            tick = time.monotonic()
            with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=definitions,
                                         resources={"object_store": store}) as context:
                result = scones_incoming_images.evaluate_tick(context)
            cursor = result.cursor
            for request in result.run_requests or []:
                run_started = time.perf_counter()
                outcome = job.execute_in_process(run_config=request.run_config, instance=instance,
                                                 tags=request.tags, raise_on_error=False)
                run_seconds.append((time.perf_counter() - run_started) * 1000)
                runs, failed = runs + 1, failed + (not outcome.success)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        dropper.join()

    with duckdb.connect(str(settings.duckdb_path), read_only=True) as connection:
        rows = connection.execute(f"SELECT s3_key, captured_at, verdict FROM {CAPTURE_TABLE}").fetchall()
    delays = [(captured - landed[key]).total_seconds() * 1000 for key, captured, _ in rows if key in landed]
    verdicts = statistics.multimode([verdict for *_, verdict in rows]) if rows else []
    print(f"\nlanding → captured result, ms ({runs} runs, {failed} failed the 0.85 filter as designed; "
          f"most common verdict {verdicts}):\n  {percentiles(delays)}")
    print(f"  one inference run (serialize → classify → filter, Dagster events in SQLite), ms:\n  "
          f"{percentiles(run_seconds)}")
    within = sum(delay <= 5000 for delay in delays)
    print(f"  within 5 s: {within}/{len(delays)}")


if __name__ == "__main__":
    typer.run(main)
