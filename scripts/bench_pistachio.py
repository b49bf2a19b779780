"""Pistachio benchmark: the 96-run sweep time, then /classify against `mlflow models serve` on the same champion.

    .venv/bin/python scripts/bench_pistachio.py [--requests 4000] [--clients 16]

Everything runs in a temporary MLOPS_HOME on 127.0.0.1: the last weekly snapshot is swept (96 configurations,
MLflow logging included, timed), the best run is registered and promoted, then the same champion is served by
`mlflow models serve --env-manager local` and by this platform's API (uvicorn, one worker each), and both are
driven one after the other by the same load: 16 keep-alive clients, a fixed number of requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpload  # noqa: E402

from tests.support import api_command, free_port, percentile, standalone_environment  # noqa: E402

SAMPLE = {
    "area": 73107,
    "perimeter": 1161.807,
    "major_axis": 442.4074,
    "minor_axis": 217.7261,
    "eccentricity": 0.8705,
    "eqdiasq": 305.0946,
    "solidity": 0.9424,
    "convex_area": 77579,
    "extent": 0.771,
    "aspect_ratio": 2.0319,
    "roundness": 0.6806,
    "compactness": 0.6896,
    "shapefactor_1": 0.0061,
    "shapefactor_2": 0.003,
    "shapefactor_3": 0.4756,
    "shapefactor_4": 0.9664,
}


def post(url: str, body: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def wait_until_ok(url: str, body: dict, process: subprocess.Popen, timeout: float = 180) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        status, payload = post(url, body)
        if status == 200:
            return payload
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


async def drive(port: int, path: str, body: dict, requests: int, clients: int) -> tuple[float, list[float]]:
    """`clients` keep-alive connections issue `requests` POSTs of `body` in total."""
    return await httpload.drive(port, [httpload.post_message(port, path, body)], requests, clients)


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU time of a process and (unless `children` is False) its children (MLflow's server is a
    child of its CLI)."""
    total = 0.0
    for child in [pid, *(_descendants(pid) if children else [])]:
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found = [int(c) for c in children]
    return found + [d for c in found for d in _descendants(c)]


def measure(
    name: str, process: subprocess.Popen, port: int, path: str, body: dict, requests: int, clients: int
) -> dict:
    asyncio.run(drive(port, path, body, min(500, requests), clients))  # warm-up
    cpu_before = cpu_seconds(process.pid)
    seconds, latencies = asyncio.run(drive(port, path, body, requests, clients))
    cpu_ms = (cpu_seconds(process.pid) - cpu_before) * 1000 / len(latencies)
    ordered = sorted(latencies)
    return {
        "server": name,
        "requests": len(latencies),
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "cpu_ms": cpu_ms,
    }


def train_champion(env: dict[str, str]) -> tuple[float, str]:
    """Sweep the last weekly snapshot as the model_sweep asset does, register the best run and promote it."""
    os.environ.update(env)
    from mlops_assets.pistachio.checks import promote
    from mlops_assets.pistachio.constants import (
        DATASET_RELATIVE_PATH,
        MODEL_NAME,
        TRAINING_DATAFILE_TAG,
        VALIDATION_AUC_TAG,
    )
    from mlops_assets.pistachio.snapshot_files import derive_weekly_files, read_snapshot
    from mlops_assets.pistachio.sweep import SplitData, full_grid, split_snapshot
    from mlops_assets.pistachio.tracking import run_sweep
    from resources import build_registry
    from resources.settings import PlatformSettings

    settings = PlatformSettings.from_env()
    registry = build_registry(settings)
    registry.experiment_id("Pistachio_Classifier")  # creates the MLflow database outside the timed sweep
    name, data = list(derive_weekly_files((settings.data_dir / DATASET_RELATIVE_PATH).read_bytes()).items())[-1]
    frame, _ = read_snapshot(data, name)
    outcome = run_sweep(
        registry, full_grid(), SplitData.from_frame(split_snapshot(frame)), name.removesuffix(".csv"), "benchmark"
    )
    version = registry.register(
        MODEL_NAME,
        outcome.model_uri,
        outcome.best_run_id,
        tags={
            VALIDATION_AUC_TAG: f"{outcome.best.val_auc:.6f}",
            TRAINING_DATAFILE_TAG: name.removesuffix(".csv"),
            "dagster_run_id": "benchmark",
        },
    )
    # A new home: the first version becomes champion without a comparison, so the scorer is never called.
    promote(registry, str(version.version), outcome.best.val_auc, lambda champion: float("nan"))
    print(
        f"sweep: {len(outcome.results)} runs, {outcome.seconds:.1f} s including MLflow logging "
        f"({outcome.logging_seconds:.1f} s of writes, overlapped with fitting); best {outcome.best.config.label} "
        f"val AUC {outcome.best.val_auc:.4f} test AUC {outcome.best.test_auc:.4f}; "
        f"{outcome.convergence_warnings} runs hit max_iter",
        flush=True,
    )
    return outcome.seconds, f"models:/{MODEL_NAME}@champion"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--data-dir", default=os.environ.get("MLOPS_DATA_DIR") or str(REPO.parent / "shared" / "data"))
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-pistachio-"))
    env = standalone_environment(home, Path(args.data_dir).resolve())
    print(f"state in {home}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    sweep_seconds, model_uri = train_champion(env)

    bin_dir = Path(sys.executable).parent
    server_env = {
        **os.environ,
        **env,
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        # mlflow models serve starts `uvicorn` through the shell: it must be on PATH.
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        # Our own model, just trained: MLflow refuses to deserialize any model without this opt-in.
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
    }
    mlflow_port, api_port = free_port(), free_port()
    servers = {
        "mlflow models serve": (
            [
                str(bin_dir / "mlflow"),
                "models",
                "serve",
                "-m",
                model_uri,
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(mlflow_port),
                "-w",
                "1",
            ],
            mlflow_port,
            "/invocations",
            {"dataframe_records": [SAMPLE]},
        ),
        "platform API (uvicorn)": (
            api_command(api_port, "--no-access-log"),
            api_port,
            "/classify",
            SAMPLE,
        ),
    }
    results = []
    for name, (command, port, path, body) in servers.items():
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=server_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            answer = wait_until_ok(f"http://127.0.0.1:{port}{path}", body, process)
            print(f"{name}: {answer.decode()[:160]}", flush=True)
            results.append(measure(name, process, port, path, body, args.requests, args.clients))
        finally:
            stop(process)

    print(f"\n{args.clients} concurrent keep-alive clients, {args.requests} requests per server (after warm-up)")
    print(f"{'server':<24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'server CPU ms/req':>20}")
    for row in results:
        print(
            f"{row['server']:<24}{row['rps']:>10.0f}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}{row['cpu_ms']:>20.3f}"
        )
    mlflow_row, api_row = results
    ratio = api_row["rps"] / mlflow_row["rps"]
    print(f"throughput ratio (platform / MLflow): {ratio:.1f}x  (target >= 3x: {'met' if ratio >= 3 else 'NOT met'})")
    print(
        f"platform p99: {api_row['p99_ms']:.2f} ms  (target <= 10 ms: {'met' if api_row['p99_ms'] <= 10 else 'NOT met'})"
    )
    print(
        f"sweep of 96 configurations incl. logging: {sweep_seconds:.1f} s  "
        f"(target <= 30 s: {'met' if sweep_seconds <= 30 else 'NOT met'}); load average now {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
