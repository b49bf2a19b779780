"""Async prediction throughput on the shared deploy queue: 1 vs 2 API processes, in the same run.

`measure_async_throughput(api_urls, n)` (imported by scripts/bench_scale.py) sends n predictions to the deploy
API, spread round-robin over `api_urls`, from `concurrency` client threads, each over keep-alive connections doing
POST /api/<deployment>/predict then the long poll GET /api/predict/{id}?wait=10 until COMPLETE; it returns the
throughput (completed predictions per second of wall time) and the client-seen latency (POST sent → COMPLETE
received) p50/p99. The APIs and whatever consumes the queue must already run.

Run as a script, it starts everything itself on 127.0.0.1: a PostgreSQL cluster in a temporary folder
(devtools/team.py), the demo Paris Airbnb deployment (published as the deployment asset does, ONNX copy
included), `--consumers` queue consumers (`python -m serving.deploy_consumer`) and two uvicorn API processes
(`MLOPS_DEPLOY_WORKER=0`), then measures with the first API alone and with both, and prints both and the ratio.

    .venv/bin/python scripts/queue_load.py [--requests 2000] [--consumers 2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import percentile  # noqa: E402

DEPLOYMENT = "paris_airbnb_price"


def _rows(deployment: str, n: int) -> list[dict]:
    from mlops_assets.deploy.config import load_deployments

    example = load_deployments()[deployment].raw_example
    return [{**example, "mois": 1 + i % 12} for i in range(n)]


def measure_async_throughput(
    api_urls: list[str], n: int, deployment: str = DEPLOYMENT, concurrency: int = 16, timeout: float = 600.0
) -> dict:
    """Predictions per second and client-seen latency (ms) of n async predictions over `api_urls`."""
    if not api_urls or n < 1:
        raise ValueError("measure_async_throughput needs at least one API URL and n >= 1")
    rows = _rows(deployment, n)
    todo: queue.Queue[int] = queue.Queue()
    for i in range(n):
        todo.put(i)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        connections: dict[str, http.client.HTTPConnection] = {}
        try:
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                base = api_urls[(i + k) % len(api_urls)]
                if base not in connections:
                    parts = urlsplit(base)
                    connections[base] = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                conn = connections[base]
                started = time.perf_counter()
                status, body = _request(conn, "POST", f"/api/{deployment}/predict", rows[i])
                if status != 202:
                    with lock:
                        failures.append(f"POST {status}: {body}")
                    continue
                prediction_id = body["prediction_id"]
                while True:
                    status, body = _request(conn, "GET", f"/api/predict/{prediction_id}?wait=10")
                    if status != 200 or body["status"] != "PENDING":
                        break
                elapsed = time.perf_counter() - started
                with lock:
                    if status == 200 and body["status"] == "COMPLETE":
                        latencies.append(elapsed)
                    else:
                        failures.append(f"GET {status}: {body}")
        finally:
            for conn in connections.values():
                conn.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, timeout - (time.perf_counter() - started)))
    seconds = time.perf_counter() - started
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError(f"{n} predictions not done within {timeout}s ({len(latencies)} complete)")
    if failures:
        raise RuntimeError(f"{len(failures)} of {n} predictions failed, e.g. {failures[0]}")
    return {
        "api_processes": len(api_urls),
        "predictions": n,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "predictions_per_s": round(n / seconds, 1),
        "latency_p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "latency_p99_ms": round(percentile(latencies, 99) * 1000, 2),
    }


def _request(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if payload is not None else {}
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    from devtools.team import LocalPostgres
    from scripts.bench_deploy import deploy_demo
    from tests.support import free_port, standalone_environment, stop_process, uvicorn_server, wait_for

    folder = Path(tempfile.mkdtemp(prefix="mlops-queue-load-"))
    # A folder of its own: as root the server runs as `postgres`, which cannot enter mkdtemp's 0700 folders.
    server = LocalPostgres(Path(tempfile.mkdtemp(prefix="mlops-queue-load-pg-")), port=free_port())
    server.start()
    consumers: list[subprocess.Popen] = []
    try:
        server.create_database("deploy_queue")
        env = {
            **standalone_environment(folder / "home", None),
            "MLOPS_MODEL_BUCKET": "",
            "MLOPS_SERVING_POLL_SECONDS": "0.5",
            "MLOPS_DEPLOY_QUEUE_URL": server.url("deploy_queue"),
            "MLOPS_DEPLOY_WORKER": "0",
        }
        deploy_demo(env, compile_model=True)
        for i in range(args.consumers):
            with open(folder / f"consumer{i}.log", "wb") as log:  # the child keeps its own descriptor
                consumers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "serving.deploy_consumer"],
                        cwd=REPO,
                        env={**os.environ, **env},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        with (
            uvicorn_server(env, log_path=folder / "api0.log") as api0,
            uvicorn_server(env, log_path=folder / "api1.log") as api1,
        ):
            for base in (api0, api1):
                wait_for(lambda b=base: _served(b), f"{DEPLOYMENT} served by {base}", timeout=120, interval=0.2)
            measure_async_throughput([api0, api1], 200, concurrency=args.concurrency)  # warm-up: imports, caches
            one = measure_async_throughput([api0], args.requests, concurrency=args.concurrency)
            two = measure_async_throughput([api0, api1], args.requests, concurrency=args.concurrency)
        print(f"{args.consumers} consumer process(es), {args.concurrency} client threads, {os.cpu_count()} CPUs")
        for result in (one, two):
            print(
                f"{result['api_processes']} API process(es): {result['predictions_per_s']} predictions/s "
                f"({result['predictions']} in {result['seconds']} s), latency p50 {result['latency_p50_ms']} ms, "
                f"p99 {result['latency_p99_ms']} ms"
            )
        print(f"ratio 2/1 API processes: {two['predictions_per_s'] / one['predictions_per_s']:.2f}")
    finally:
        for process in consumers:
            stop_process(process)
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


def _served(base: str) -> bool:
    from urllib.request import urlopen

    with urlopen(f"{base}/api/deployments", timeout=10) as response:
        return any(d["name"] == DEPLOYMENT and d["served"] for d in json.loads(response.read()))


if __name__ == "__main__":
    main()
