"""Benchmark of the team profile against the embedded one (docs/scale-out.md#benchmarks).

    .venv/bin/python scripts/bench_scale.py --data-dir ../shared/data [--scale 1.0] [--workers 1 2] [--requests 1000]
    .venv/bin/python scripts/bench_scale.py --data-dir ../shared/data --quick     # a 2 % Steam, a minute or two

1. The `steam` group (generated users' items at `--scale`, 1.0 = 5,153,209 rows) materialized in one run: in the
   embedded profile (in-process executor, SQLite instance, local files), then in the team profile started by
   `dev.py up --profile team` with 1 and with 2 Celery workers. For each, where the time goes, from the run's
   event log: the run's wall time, the steps' own compute (STEP_START to STEP_SUCCESS), and for Celery the
   dispatch (task submitted to a worker picking it up) and the worker's step set-up (picked up to STEP_START:
   loading the code location and the run's plan in the worker).
2. Async predictions per second with 1 and with 2 API processes draining the shared queue, through
   `scripts/queue_load.py`'s `measure_async_throughput(api_urls, n)`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import standalone_environment, wait_for  # noqa: E402


def child(scale: float) -> int:
    """Materialize the steam group once in this process's environment; print one JSON line of timings."""
    import dagster as dg

    from mlops_assets.definitions import defs
    from mlops_assets.steam.bootstrap import bootstrap

    definitions = defs()
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        bootstrap(definitions, instance, generator_scale=scale)
        wall = time.monotonic() - started
        (run,) = instance.get_runs(limit=1)
        print(json.dumps({"wall": wall, **timings(instance.all_logs(run.run_id))}), flush=True)
    return 0


def timings(entries) -> dict:
    """Seconds per phase, summed over the steps, from one run's event log."""
    marks: dict[str, dict[str, float]] = {}
    first = last = None
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        first = entry.timestamp if first is None else first
        last = entry.timestamp
        step = marks.setdefault(entry.step_key or "", {})
        kind = event.event_type_value
        if kind == "ENGINE_EVENT" and entry.message.startswith("Submitting celery task"):
            step["submitted"] = entry.timestamp
        elif kind == "ENGINE_EVENT" and "in celery worker" in entry.message:
            step["picked"] = entry.timestamp
        elif kind in ("STEP_START", "STEP_SUCCESS"):
            step[kind] = entry.timestamp
    steps = {k: v for k, v in marks.items() if k and "STEP_START" in v and "STEP_SUCCESS" in v}
    compute = {k: v["STEP_SUCCESS"] - v["STEP_START"] for k, v in steps.items()}
    celery = [v for v in steps.values() if "submitted" in v and "picked" in v]
    return {
        "run": (last or 0) - (first or 0),
        "steps": len(steps),
        "compute": sum(compute.values()),
        "slowest": sorted(compute.items(), key=lambda kv: -kv[1])[:3],
        "dispatch": sum(v["picked"] - v["submitted"] for v in celery),
        "worker_setup": sum(v["STEP_START"] - v["picked"] for v in celery),
    }


def run_child(env: dict[str, str], scale: float) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", "--scale", str(scale)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"steam materialization failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(label: str, result: dict, baseline: float | None) -> None:
    ratio = f" = {result['wall'] / baseline:.2f}x embedded" if baseline else ""
    slowest = ", ".join(f"{key.removeprefix('steam__')} {seconds:.1f}" for key, seconds in result["slowest"])
    print(
        f"{label:<22} {result['wall']:7.1f} s{ratio}; run {result['run']:.1f} s, {result['steps']} steps: "
        f"compute {result['compute']:.1f} s (slowest: {slowest}), Celery dispatch {result['dispatch']:.1f} s, "
        f"worker step set-up {result['worker_setup']:.1f} s",
        flush=True,
    )


def queue_throughput(platform, requests: int) -> None:
    try:
        from scripts.queue_load import DEPLOYMENT, measure_async_throughput
    except ImportError:
        print(
            "async predictions/s: skipped, this needs scripts/queue_load.py (measure_async_throughput) and the "
            "shared prediction queue (MLOPS_DEPLOY_QUEUE_URL)",
            flush=True,
        )
        return
    import httpx

    # The demo deployment the load posts to, deployed as `up` does.
    bootstrap = [sys.executable, "-m", "mlops_assets.bootstrap", "--only", "deploy"]
    done = subprocess.run(bootstrap, cwd=REPO, env=platform.env, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"async predictions/s: the deploy bootstrap failed: {done.stdout.strip()[-300:]}", flush=True)
        return
    for base in platform.apis:
        wait_for(
            lambda base=base: {d["name"]: d["served"] for d in httpx.get(f"{base}/api/deployments").json()}.get(
                DEPLOYMENT
            ),
            f"{DEPLOYMENT} served by {base}",
            timeout=300,
            interval=0.5,
        )
    one = measure_async_throughput(platform.apis[:1], requests)
    two = measure_async_throughput(platform.apis[:2], requests)
    print(f"async predictions, 1 API process:  {one}", flush=True)
    print(f"async predictions, 2 API processes: {two}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("MLOPS_DATA_DIR"))
    parser.add_argument("--scale", type=float, default=1.0, help="share of the 5.15 M users' items (1.0)")
    parser.add_argument("--quick", action="store_true", help="--scale 0.02 and 200 async requests")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Celery worker counts (1 2)")
    parser.add_argument("--requests", type=int, default=1000, help="async predictions per queue measurement")
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.scale, args.requests = 0.02, 200
    if args.child:
        return child(args.scale)
    if args.data_dir is None or not Path(args.data_dir).is_dir():
        parser.error("the real datasets are needed: --data-dir or MLOPS_DATA_DIR")
    data = Path(args.data_dir).resolve()
    print(f"steam group, generated users' items at scale {args.scale}; load {os.getloadavg()[0]:.1f}", flush=True)

    baseline = None
    if not args.skip_embedded:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
            home = Path(folder) / "mlops"
            (home / "dagster_home").mkdir(parents=True)
            env = {**os.environ, **standalone_environment(home, data), "DAGSTER_HOME": str(home / "dagster_home")}
            (home / "dagster_home" / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
            result = run_child(env, args.scale)
        baseline = result["wall"]
        show("embedded", result, None)

    from tests.team.launcher import launched

    for count in args.workers:
        home = Path(tempfile.mkdtemp(prefix="bench-scale-team-"))
        home.chmod(0o755)  # PostgreSQL runs as the postgres user when we are root
        try:
            with launched(home, data, celery_workers=count) as platform:
                show(
                    f"team, {count} Celery worker{'s' if count > 1 else ''}",
                    run_child(platform.env, args.scale),
                    baseline,
                )
                if count == max(args.workers):
                    queue_throughput(platform, args.requests)
        finally:
            shutil.rmtree(home, ignore_errors=True)
    print(f"load at the end {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
