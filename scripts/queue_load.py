"""Async prediction throughput on the shared deploy queue: 1 vs 2 API processes, in the same run.

`measure_async_throughput(api_urls, n)` (imported by scripts/bench_scale.py) sends n predictions to the deploy
API from `concurrency` keep-alive connections spread round-robin over `api_urls` (scripts/httpload.py's raw
client, so the client's own cost stays small), each doing POST /api/<deployment>/predict then the long poll
GET /api/predict/{id}?wait=10 until COMPLETE; it returns the throughput (completed predictions per second of
wall time) and the client-seen latency (POST sent → COMPLETE received) p50/p99. The APIs and whatever consumes
the queue must already run.

Run as a script, it starts everything itself on 127.0.0.1: a PostgreSQL cluster in a temporary folder
(devtools/team.py), the demo Paris Airbnb deployment (published as the deployment asset does, ONNX copy
included), `--consumers` queue consumers (`python -m serving.deploy_consumer`) and two uvicorn API processes
(`MLOPS_DEPLOY_WORKER=0`), then measures with the first API alone and with both, alternating for `--rounds`,
and prints each figure and the ratio.

    .venv/bin/python scripts/queue_load.py [--requests 1000] [--consumers 2] [--concurrency 16] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.httpload import exchange, get_message, post_message  # noqa: E402
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
    parts = [urlsplit(url) for url in api_urls]
    if any(part.hostname != "127.0.0.1" or part.port is None for part in parts):
        raise ValueError(f"API URLs must be http://127.0.0.1:<port> (the raw load client's), got {api_urls}")
    rows = _rows(deployment, n)
    drive = _drive([part.port for part in parts], deployment, rows, concurrency)
    seconds, latencies = asyncio.run(asyncio.wait_for(drive, timeout))
    return {
        "api_processes": len(api_urls),
        "predictions": n,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "predictions_per_s": round(n / seconds, 1),
        "latency_p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "latency_p99_ms": round(percentile(latencies, 99) * 1000, 2),
    }


async def _drive(ports: list[int], deployment: str, rows: list[dict], concurrency: int) -> tuple[float, list[float]]:
    """`concurrency` keep-alive connections, spread round-robin over the APIs, each sending POST then long polls
    until its prediction is COMPLETE; anything else stops the run (a benchmark of errors is none)."""
    todo = list(range(len(rows)))[::-1]
    latencies: list[float] = []

    async def client(c: int) -> None:
        port = ports[c % len(ports)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while todo:
                i = todo.pop()
                started = time.perf_counter()
                post = post_message(port, f"/api/{deployment}/predict", rows[i])
                status, body = await exchange(reader, writer, post)
                if status != 202:
                    raise RuntimeError(f"POST answered {status} on port {port}: {body[:200]!r}")
                poll = get_message(port, f"/api/predict/{json.loads(body)['prediction_id']}?wait=10")
                while True:
                    status, body = await exchange(reader, writer, poll)
                    answer = json.loads(body) if status == 200 else {}
                    if answer.get("status") != "PENDING":
                        break
                if answer.get("status") != "COMPLETE":
                    raise RuntimeError(f"GET answered {status} on port {port}: {body[:200]!r}")
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(concurrency)))
    return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="1 API then 2 APIs, this many times")
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
            # Alternated, so a change of the machine's load during the run weighs on both configurations.
            results = []
            for _ in range(args.rounds):
                for apis in ([api0], [api0, api1]):
                    results.append(measure_async_throughput(apis, args.requests, concurrency=args.concurrency))
        print(f"{args.consumers} consumer process(es), {args.concurrency} client connections, {os.cpu_count()} CPUs")
        for result in results:
            print(
                f"{result['api_processes']} API process(es): {result['predictions_per_s']} predictions/s "
                f"({result['predictions']} in {result['seconds']} s), latency p50 {result['latency_p50_ms']} ms, "
                f"p99 {result['latency_p99_ms']} ms"
            )
        seconds = {k: sum(r["seconds"] for r in results if r["api_processes"] == k) for k in (1, 2)}
        print(f"ratio 2/1 API processes (predictions/s over all rounds): {seconds[1] / seconds[2]:.2f}")
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
