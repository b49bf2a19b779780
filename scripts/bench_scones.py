"""Benchmark of the Scones image workflow on a temporary MLOPS_HOME (local object store) with the real data.

1. Trains the classifier once through the `scones_training` job (prints training time and test accuracy).
2. Classification latency per image: decode + 32x32 + champion `predict_proba`, one image at a time over the
   200 test PNGs (the work of the classify step and of POST /scones/classify).
3. Landing → captured result over N images: a thread drops test PNGs under `scones/incoming/` every
   --gap seconds while the main thread plays the sensor daemon: every second (the sensor's
   minimum_interval_seconds) it evaluates `scones_incoming_images` and executes each run request in-process.
   The time from put_bytes to the capture row's `captured_at` includes the wait for the next tick.
4. A burst of --burst images dropped at once, the same way: seconds until all are captured, and how many object
   versions got more than one capture row.

This is the in-process harness: no daemon, no run worker processes. scripts/bench_live.py measures the same
figures through the real webserver, daemon and run launcher, and prints these beside them (--json).

    .venv/bin/python scripts/bench_scones.py [--images 50] [--gap 3.0] [--burst 50] [--json figures.json]
"""

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import typer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import percentile, standalone_environment  # noqa: E402


def percentiles(values: list[float]) -> str:
    return (
        f"mean {statistics.mean(values):8.1f}  p50 {percentile(values, 50):8.1f}  "
        f"p95 {percentile(values, 95):8.1f}  max {max(values):8.1f}  (n={len(values)})"
    )


def main(
    images: int = typer.Option(50, help="Images dropped for the landing → capture measurement"),
    gap: float = typer.Option(3.0, help="Seconds between two drops"),
    burst: int = typer.Option(50, help="Images dropped at once after the trickle (0: none)"),
    json_path: Path = typer.Option(None, "--json", help="Also write the landing figures to this file"),
    data_dir: Path = typer.Option(REPO.parent / "shared" / "data", help="Folder with cifar100-subset/"),
):
    home = Path(tempfile.mkdtemp(prefix="bench-scones-"))
    os.environ.update(standalone_environment(home / "mlops", data_dir.resolve()))
    import logging

    import dagster as dg

    logging.getLogger("dagster").setLevel(logging.WARNING)
    from mlops_assets.definitions import defs
    from mlops_assets.scones.automation import training_job
    from mlops_assets.scones.constants import MODEL_NAME
    from mlops_assets.scones.imaging import image_row
    from resources import build_object_store, build_registry
    from resources.settings import PlatformSettings

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
            dg.AssetKey(["scones", "image_classifier"])
        ).asset_materialization.metadata
        print(f"\ntraining job (extract 1,200 PNGs, train, evaluate, log, register, gate): {job_seconds:.1f} s")
        print(
            f"  fit on 1,000 images: {meta['train_seconds'].value:.1f} s; test accuracy "
            f"{meta['accuracy'].value:.4f} (original ResNet: 0.84375 final, 0.875 best); "
            f"pass rate at 0.85: {meta['threshold_pass_rate'].value:.3f}"
        )

        model = registry.load_version(MODEL_NAME, registry.version_by_alias(MODEL_NAME).version)
        payloads = [path.read_bytes() for path in test_pngs]
        model.predict_proba(image_row(payloads[0]))  # warm-up
        latencies = []
        for data in payloads:
            tick = time.perf_counter()
            model.predict_proba(image_row(data))
            latencies.append((time.perf_counter() - tick) * 1000)
        print(
            f"\nclassification latency per image, ms (decode + resize + predict_proba, 1 image per call):\n  "
            f"{percentiles(latencies)}"
        )

        trickle = play_landings(definitions, instance, store, payloads, "trickle", images, gap)
        burst_figures = play_landings(definitions, instance, store, payloads, "burst", burst, 0.0) if burst else None

    print(
        f"\nlanding → captured result, ms, one image every {gap:g} s ({trickle['runs']} runs, "
        f"{trickle['failed']} failed: an image below the 0.85 filter, as designed):\n"
        f"  {percentiles(trickle['delays_ms'])}"
    )
    print(
        f"  one inference run (serialize → classify → filter, Dagster events in SQLite), ms:\n  "
        f"{percentiles(trickle['run_ms'])}"
    )
    within = sum(delay <= 5000 for delay in trickle["delays_ms"])
    print(f"  within 5 s: {within}/{len(trickle['delays_ms'])}")
    if burst_figures:
        print(
            f"\nburst of {burst} images dropped at once: all captured after {burst_figures['all_captured_s']:.1f} s "
            f"in {burst_figures['runs']} runs; {burst_figures['captured']} captured, "
            f"{burst_figures['repeats']} object versions captured more than once"
        )
    if json_path:
        json_path.write_text(
            json.dumps({"trickle": summary(trickle), "burst": burst_figures and summary(burst_figures)})
        )


def summary(figures: dict) -> dict:
    delays = figures["delays_ms"]
    return {
        **{k: v for k, v in figures.items() if k not in ("delays_ms", "run_ms")},
        "p50_s": percentile(delays, 50) / 1000 if delays else None,
        "max_s": max(delays) / 1000 if delays else None,
    }


def play_landings(definitions, instance, store, payloads: list[bytes], name: str, count: int, gap: float) -> dict:
    """Drop `count` images `gap` seconds apart while playing the sensor daemon in this process: every second,
    evaluate the sensor and execute its run requests. Landing → capture delays, runs, versions captured more than
    once."""
    import dagster as dg
    import duckdb

    from mlops_assets.scones import latecomers
    from mlops_assets.scones.automation import scones_incoming_images
    from mlops_assets.scones.constants import CAPTURE_TABLE, INCOMING_PREFIX
    from resources.settings import PlatformSettings

    job = definitions.resolve_job_def("scones_inference")
    landed: dict[str, datetime] = {}
    keys = [f"{INCOMING_PREFIX}{name}-{i:03d}.png" for i in range(count)]

    def drop() -> None:
        for i, key in enumerate(keys):
            landed[key] = datetime.now(UTC)
            store.put_bytes(key, payloads[i % len(payloads)], "image/png")
            time.sleep(gap)

    with dg.build_sensor_context(
        instance=instance, definitions=definitions, resources={"object_store": store}
    ) as context:
        cursor = scones_incoming_images.evaluate_tick(context).cursor  # what landed before is not ours
    started = datetime.now(UTC)
    dropper = threading.Thread(target=drop)
    dropper.start()
    requested, runs, failed, run_ms = 0, 0, 0, []
    deadline = time.monotonic() + count * gap + 180
    while time.monotonic() < deadline and requested < count:
        tick = time.monotonic()
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=definitions, resources={"object_store": store}
        ) as context:
            result = scones_incoming_images.evaluate_tick(context)
        cursor = result.cursor
        for request in result.run_requests or []:
            run_started = time.perf_counter()
            outcome = job.execute_in_process(
                run_config=request.run_config, instance=instance, tags=request.tags, raise_on_error=False
            )
            run_ms.append((time.perf_counter() - run_started) * 1000)
            # What landed between the tick and the run is taken by the run as latecomers: counted too.
            taken = latecomers.decode(instance.get_run_by_id(outcome.run_id).tags.get(latecomers.TAG), "")
            requested += len(request.run_config["ops"]["serialize_images"]["config"]["landings"]) + len(taken)
            runs, failed = runs + 1, failed + (not outcome.success)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    dropper.join()
    settings = PlatformSettings.from_env()
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as connection:
        rows = connection.execute(
            f"SELECT s3_key, etag, captured_at FROM {CAPTURE_TABLE} WHERE s3_key LIKE '{INCOMING_PREFIX}{name}-%'"
        ).fetchall()
    versions = [(key, etag) for key, etag, _ in rows]
    delays = [(captured - landed[key]).total_seconds() * 1000 for key, _, captured in rows if key in landed]
    last = max((captured for *_, captured in rows), default=None)
    return {
        "images": count,
        "gap_s": gap,
        "runs": runs,
        "failed": failed,
        "captured": len(set(versions)),
        "repeats": len(versions) - len(set(versions)),
        "delays_ms": delays,
        "run_ms": run_ms,
        "all_captured_s": (last - started).total_seconds() if last and len(set(versions)) == count else None,
    }


if __name__ == "__main__":
    typer.run(main)
