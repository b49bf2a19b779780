"""The platform as a user runs it, measured: `python3 dev.py up --no-bootstrap` (Dagster webserver, daemon with the
default run launcher, one process per run, and the serving API) on a temporary home with free ports.

1. The Scones classifier is trained through the webserver's GraphQL API (what "Materialize" in the UI does).
2. Trickle: one image every --gap seconds into `scones/incoming/` (--images of them): landing → capture row, p50
   and max. Burst: --burst images dropped at once: seconds until all are captured, and object versions captured
   more than once.
3. Pistachio: the first weekly file dropped into `pistachio/incoming/` → `POST /classify` answers from a champion.
4. Deploy: the demo deployments are published through the webserver, then a new version of the Paris model is
   uploaded and pinned with the `mlops` CLI → `/api/paris_airbnb_price/predict` answers with that version.
5. Beside them: the same Scones figures from the in-process harness (scripts/bench_scones.py, labelled
   "harness"), and the code-location load ratio (load of the code location / a bare `import dagster`).
6. Where the time goes per image on the real path (medians from the runs' event logs): the sensor loop and tick,
   the run queue, the run worker's start (process + code location), the steps, and the pool waits among them;
   how many images a starting run took as latecomers, and the same legs for the slowest trickle image (the tail).

Every process it starts is stopped on exit, Ctrl-C and errors included.

    .venv/bin/python scripts/bench_live.py [--images 20] [--gap 3] [--burst 50] [--no-harness] [--scones-only]
                                           [--no-load]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.live import (  # noqa: E402
    LivePlatform,
    capture_rows,
    captured_keys,
    ensure_scones_champion,
    live_platform,
    scones_runs_in_flight,
    wait_for_run,
    wait_until,
)
from tests.support import percentile, shared_data_dir  # noqa: E402

PISTACHIO_EXAMPLE_PATH = "/classify"


def measure_load() -> dict[str, float]:
    """Code location load / bare `import dagster`, each in a fresh interpreter. scripts/bench_load.py's
    `measure_load` when it exists (medians over runs), else one interleaved timing of the two here."""
    path = REPO / "scripts" / "bench_load.py"
    if path.exists():
        spec = importlib.util.spec_from_file_location("bench_load", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.measure_load(runs=3)
    timer = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLOPS_", "MLFLOW_", "DAGSTER_"))}
    with tempfile.TemporaryDirectory(prefix="bench-live-load-") as home:
        env.update(MLOPS_HOME=home, MLOPS_OFFLINE="1", GIT_PYTHON_REFRESH="quiet")

        def seconds(code: str) -> float:
            out = subprocess.run(
                [sys.executable, "-c", timer.format(code)],
                cwd=REPO,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            return float(out.split()[-1])

        seconds("import mlops_assets.definitions as d; d.defs()")  # warm byte-code and page caches
        dagster = seconds("import dagster")
        location = seconds("import mlops_assets.definitions as d; d.defs()")
    return {"dagster_s": dagster, "code_location_s": location, "code_location_ratio": location / dagster}


def landings(
    platform: LivePlatform, store, duckdb_path: Path, payloads: list[bytes], name: str, count: int, gap: float
) -> dict:
    """Drop `count` images `gap` s apart into scones/incoming/, wait until all are captured by the real daemon
    path; delays from put to the capture row's captured_at."""
    from mlops_assets.scones.constants import INCOMING_PREFIX

    instance = platform.instance()
    keys = [f"{INCOMING_PREFIX}live-{name}-{i:03d}.png" for i in range(count)]
    landed: dict[str, datetime] = {}
    started = datetime.now(UTC)

    def drop() -> None:
        for i, key in enumerate(keys):
            landed[key] = datetime.now(UTC)
            store.put_bytes(key, payloads[i % len(payloads)], "image/png")
            time.sleep(gap)

    dropper = threading.Thread(target=drop, daemon=True)
    dropper.start()
    wait_until(
        lambda: set(keys) <= captured_keys(instance),
        count * gap + 600,
        f"{name}: {count} images captured",
        interval=0.5,
    )
    dropper.join()
    wait_until(lambda: not scones_runs_in_flight(instance), 300, "inference runs finished")
    rows = capture_rows(duckdb_path, f"{INCOMING_PREFIX}live-{name}-%")
    delays = [(captured - landed[key]).total_seconds() for key, _, captured, _, _ in rows]
    versions = [(key, etag) for key, etag, *_ in rows]
    return {
        "images": count,
        "gap_s": gap,
        "runs": len({run_id for *_, run_id in rows}),
        "phases": phases(instance, rows, landed),
        "captured": len(set(versions)),
        "repeats": len(versions) - len(set(versions)),
        "p50_s": percentile(delays, 50),
        "max_s": max(delays),
        "mean_s": statistics.mean(delays),
        "all_captured_s": (max(captured for _, _, captured, _, _ in rows) - started).total_seconds(),
    }


PHASES = (
    "landing → run submitted",
    "queued → dequeued",
    "dequeued → run worker started",
    "run started → first step",
    "steps → last capture written",
    "waits for a pool slot",
)


def phases(instance, rows: list[tuple], landed: dict[str, datetime]) -> dict:
    """Seconds of each leg from landing to capture, per image, from the runs' event logs: where the time goes on
    the real path (sensor loop and tick, run queue, run worker start-up incl. the code location, steps). Each leg
    counts from the landing at the earliest: an image that landed while its run waited to start (a latecomer,
    mlops_assets/scones/latecomers.py) spent no time on the legs before. The pool waits (a step ready but its
    `duckdb_warehouse` slot held by another run) are part of the steps. Medians, the count of latecomers, and
    the legs of the slowest image (the tail)."""
    import dagster as dg

    per_image: list[tuple[float, str, dict[str, float]]] = []
    runs: dict[str, dict] = {}
    latecomers = 0
    for key, _, captured, _, run_id in rows:
        if run_id not in runs:
            record = instance.get_run_record_by_id(run_id)
            events = [
                (entry.timestamp, entry.dagster_event.event_type, entry.step_key)
                for entry in instance.all_logs(run_id)
                if entry.dagster_event
            ]
            first = {}
            for when, kind, _ in events:
                first.setdefault(kind, when)
            step_starts = [when for when, kind, _ in events if kind == dg.DagsterEventType.STEP_START]
            # A step that was ready (its upstream done) but waited for its pool slot: from the previous step's
            # end (or the run's start) to its STEP_START.
            ends = [
                when
                for when, kind, _ in events
                if kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)
            ]
            ready = [first.get(dg.DagsterEventType.RUN_START, 0.0), *ends]
            runs[run_id] = {
                "created": record.create_timestamp.timestamp(),
                # Taken off the queue: the coordinator logs RUN_STARTING as it hands the run to the
                # launcher (RUN_DEQUEUED only where a run is dequeued without launching yet).
                "dequeued": first.get(dg.DagsterEventType.RUN_DEQUEUED, first.get(dg.DagsterEventType.RUN_STARTING)),
                "started": first.get(dg.DagsterEventType.RUN_START),
                "first_step": min(step_starts, default=None),
                "pool_wait": sum(start - before for start, before in zip(step_starts[1:], ready[1:], strict=False)),
            }
        run = runs[run_id]
        if None in (run["dequeued"], run["started"], run["first_step"]):
            continue
        at = landed[key].timestamp()
        latecomers += at > run["created"]
        bounds = [run["created"], run["dequeued"], run["started"], run["first_step"], captured.timestamp()]
        legs = {
            name: max(0.0, end - max(start, at))
            for name, start, end in zip(PHASES[:5], [at, *bounds[:-1]], bounds, strict=True)
        }
        legs[PHASES[5]] = run["pool_wait"]
        per_image.append((captured.timestamp() - at, key, legs))
    if not per_image:
        return {"median": {}, "latecomers": 0, "slowest": None}
    slowest = max(per_image, key=lambda item: item[0])
    return {
        "median": {name: statistics.median(legs[name] for *_, legs in per_image) for name in PHASES},
        "latecomers": latecomers,
        "slowest": {"key": slowest[1], "delay_s": slowest[0], **slowest[2]},
    }


def post_json(url: str, body: dict, timeout: float = 10) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def pistachio_to_served(platform: LivePlatform, store, data: Path) -> float:
    """Seconds from the first weekly file landing to `POST /classify` answering from a champion."""
    from mlops_assets.pistachio.snapshot_files import derive_weekly_files, snapshot_object_key
    from serving.pistachio import EXAMPLE

    name, content = sorted(derive_weekly_files((data / "pistachio" / "pistachio.csv").read_bytes()).items())[0]
    assert post_json(platform.api + PISTACHIO_EXAMPLE_PATH, EXAMPLE)[0] == 503, "a Pistachio champion exists already"
    dropped = time.monotonic()
    store.put_bytes(snapshot_object_key(name.removesuffix(".csv")), content, "text/csv")
    wait_until(
        lambda: post_json(platform.api + PISTACHIO_EXAMPLE_PATH, EXAMPLE)[0] == 200,
        900,
        "Pistachio champion served",
        interval=0.25,
    )
    return time.monotonic() - dropped


def pin_to_predict(platform: LivePlatform, store, settings, deployment: str = "paris_airbnb_price") -> float:
    """Seconds from `mlops pin` of a new version to `/api/<deployment>/predict` answering with it."""
    from mlops_assets.deploy.config import load_deployments
    from mlops_assets.deploy.models import read_pin
    from resources.model_bucket import build_model_bucket

    run = wait_for_run(platform.instance(), platform.launch("deploy_demo_job"), follow_retries=True)
    if read_pin(store, deployment) is None:
        raise RuntimeError(f"deploy_demo_job ended {run.status} without pinning {deployment}; see {platform.log}")
    pin = read_pin(store, deployment)
    example = load_deployments()[deployment].raw_example

    def served() -> str | None:
        return predicted_version(platform.api, deployment, example)

    wait_until(lambda: served() == pin.version_id, 120, f"{deployment} served")
    mlops = [str(Path(sys.executable).parent / "mlops")]
    with tempfile.TemporaryDirectory(prefix="bench-live-model-") as folder:
        model = Path(folder) / pin.key
        model.write_bytes(build_model_bucket(settings, platform.env).read_version(pin.bucket, pin.key, pin.version_id))
        out = subprocess.run(
            [*mlops, "upload", pin.bucket, str(model), "--tag", "bench-live"],
            env=platform.env,
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    version_id = out.split("version_id=")[1].split()[0]
    pinned = time.monotonic()
    subprocess.run([*mlops, "pin", deployment, version_id], env=platform.env, cwd=REPO, check=True, capture_output=True)
    wait_until(lambda: served() == version_id, 600, f"{deployment} serving {version_id}", interval=0.25)
    return time.monotonic() - pinned


def predicted_version(api: str, deployment: str, example: dict) -> str | None:
    status, answer = post_json(f"{api}/api/{deployment}/predict", example)
    if status not in (200, 202) or "prediction_id" not in answer:
        return None
    with urllib.request.urlopen(f"{api}/api/predict/{answer['prediction_id']}?wait=5", timeout=15) as response:
        result = json.loads(response.read())
    return result.get("model_version") if result.get("status") == "COMPLETE" else None


def harness(images: int, gap: float, burst: int, data: Path) -> dict:
    """The in-process harness (scripts/bench_scones.py) on its own temporary home, in a child process."""
    with tempfile.TemporaryDirectory(prefix="bench-live-harness-") as folder:
        out = Path(folder) / "figures.json"
        process = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "scripts" / "bench_scones.py"),
                "--images",
                str(images),
                "--gap",
                str(gap),
                "--burst",
                str(burst),
                "--json",
                str(out),
                "--data-dir",
                str(data),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            if process.wait() != 0:
                raise RuntimeError(f"bench_scones.py exited with {process.returncode}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        return json.loads(out.read_text())


def api_serves(api: str, model_name: str) -> bool:
    with urllib.request.urlopen(f"{api}/health", timeout=10) as response:
        loaded = json.loads(response.read())["loaded"]
    return any(key.endswith(f":{model_name}") and ready for key, ready in loaded.items())


def row(label: str, figure: str, target: str) -> str:
    return f"  {label:<58} {figure:<34} {target}"


def interrupted(*_: object) -> None:
    # SIGTERM unwinds like Ctrl-C, through the finally blocks that stop every process started here.
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20, help="trickle: images dropped one every --gap seconds")
    parser.add_argument("--gap", type=float, default=3.0)
    parser.add_argument("--burst", type=int, default=50, help="images dropped at once")
    parser.add_argument("--no-harness", action="store_true", help="skip the in-process harness figures")
    parser.add_argument("--scones-only", action="store_true", help="skip the Pistachio and deploy figures")
    parser.add_argument("--no-load", action="store_true", help="skip the code-location load ratio")
    parser.add_argument("--data-dir", type=Path, default=shared_data_dir())
    args = parser.parse_args()
    if args.data_dir is None:
        parser.error("no datasets: pass --data-dir or set MLOPS_DATA_DIR")
    signal.signal(signal.SIGTERM, interrupted)

    from resources import build_object_store
    from resources.settings import PlatformSettings

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    load = None if args.no_load else measure_load()
    home = Path(tempfile.mkdtemp(prefix="bench-live-")) / "mlops"
    started = time.monotonic()
    with live_platform(home, args.data_dir.resolve()) as platform:
        print(
            f"dev.py up --no-bootstrap answering after {time.monotonic() - started:.0f} s (state in {home})", flush=True
        )
        settings = PlatformSettings.from_env(platform.env)
        store = build_object_store(settings)
        tick = time.monotonic()
        ensure_scones_champion(platform)
        print(f"scones_training through the webserver: {time.monotonic() - tick:.0f} s", flush=True)
        # The inference runs classify through the API: measure a platform whose API has loaded the champion, as
        # a user's has long before images land (its first load right after training is a one-time cost).
        tick = time.monotonic()
        wait_until(lambda: api_serves(platform.api, "scones_classifier"), 300, "the API serving the Scones champion")
        print(f"the API serving the new champion after {time.monotonic() - tick:.0f} s more", flush=True)
        payloads = [path.read_bytes() for path in sorted((args.data_dir / "scones" / "test").glob("*.png"))]
        trickle = landings(platform, store, settings.duckdb_path, payloads, "trickle", args.images, args.gap)
        print(f"trickle done: {trickle}", flush=True)
        burst = landings(platform, store, settings.duckdb_path, payloads, "burst", args.burst, 0.0)
        print(f"burst done: {burst}", flush=True)
        pistachio = deploy = None
        if not args.scones_only:
            pistachio = pistachio_to_served(platform, store, args.data_dir)
            print(f"pistachio done: {pistachio:.1f} s", flush=True)
            deploy = pin_to_predict(platform, store, settings)
            print(f"deploy done: {deploy:.1f} s", flush=True)
    measured = harness(args.images, args.gap, args.burst, args.data_dir) if not args.no_harness else None

    print(f"\nload average {os.getloadavg()[0]:.1f} at the end\n")
    print(row("figure", "real path (dev.py up)", "target"))
    print(
        row(
            f"scones trickle, 1 image / {args.gap:g} s, n={args.images}: landing → capture",
            f"p50 {trickle['p50_s']:.1f} s, max {trickle['max_s']:.1f} s",
            "p50 ≤ 8 s, max ≤ 15 s",
        )
    )
    print(
        row(
            f"scones burst of {args.burst}: all captured after",
            f"{burst['all_captured_s']:.1f} s ({burst['runs']} runs)",
            "≤ 60 s",
        )
    )
    print(row("scones burst: object versions captured more than once", str(burst["repeats"]), "0"))
    if pistachio is not None:
        print(row("pistachio new weekly file → served champion", f"{pistachio:.1f} s", "≤ 30 s"))
        print(row("deploy `mlops pin` → /api/paris_airbnb_price/predict", f"{deploy:.1f} s", "≤ 30 s"))
    if measured:
        h_trickle, h_burst = measured["trickle"], measured["burst"]
        print(
            row(
                "harness: scones trickle landing → capture",
                f"p50 {h_trickle['p50_s']:.1f} s, max {h_trickle['max_s']:.1f} s",
                "(in-process, no daemon)",
            )
        )
        everything = "not all captured" if h_burst["all_captured_s"] is None else f"{h_burst['all_captured_s']:.1f} s"
        print(
            row(
                f"harness: scones burst of {args.burst}: all captured after",
                f"{everything} ({h_burst['runs']} runs), {h_burst['repeats']} captured twice",
                "(in-process, no daemon)",
            )
        )
    if load:
        print(
            row(
                "code location load / bare `import dagster`",
                f"{load['code_location_ratio']:.1f}x "
                f"({load.get('code_location_s', 0):.1f} s / {load.get('dagster_s', 0):.1f} s)",
                "≤ 2x",
            )
        )
    print("\nwhere the time goes on the real path, median seconds per image (trickle / burst):")
    for name in PHASES:
        figures = [
            f"{legs['phases']['median'][name]:.1f}" if legs["phases"]["median"] else "-" for legs in (trickle, burst)
        ]
        print(f"  {name:<40} {' / '.join(figures)}")
    print(
        f"  taken by a run that was starting (latecomers): {trickle['phases']['latecomers']} of {trickle['images']}"
        f" / {burst['phases']['latecomers']} of {burst['images']}"
    )
    slowest = trickle["phases"]["slowest"]
    if slowest:
        print(f"\nthe slowest trickle image ({slowest['key']}, {slowest['delay_s']:.1f} s), seconds per leg:")
        for name in PHASES:
            print(f"  {name:<40} {slowest[name]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
