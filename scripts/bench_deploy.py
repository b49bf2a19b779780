"""Benchmark of the deploy system's async prediction round trip on 127.0.0.1.

Starts a real uvicorn server on a temporary MLOPS_HOME with the demo Paris Airbnb Pipeline deployed as the
deployment asset publishes it (with its compiled ONNX copy when that passes its probes; `--no-compile` publishes
the Pipeline alone), then measures POST /api/paris_airbnb_price/predict → GET /api/predict/{id} until COMPLETE,
sequentially over a keep-alive connection, once polling GET every 0.5 ms and once with the long poll `?wait=5`.
Prints p50/p99 of that round trip and of the queue time the server recorded (enqueue → COMPLETE), which runtime
answered, and, in the same run, the bare in-process predict for comparison: the Pipeline back to back and after
3 ms of idleness (as requests arrive in the sequential benchmark), and the compiled copy after idleness.

    .venv/bin/python scripts/bench_deploy.py [--requests 300] [--no-compile]
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mlops_assets.deploy.assets import deployment_files  # noqa: E402
from mlops_assets.deploy.compiled import CompiledModel, compile_pipeline  # noqa: E402
from mlops_assets.deploy.config import load_deployments, predict_value  # noqa: E402
from mlops_assets.deploy.constants import snapshot_system  # noqa: E402
from mlops_assets.deploy.deploying import build_record  # noqa: E402
from mlops_assets.deploy.models import write_pin  # noqa: E402
from mlops_assets.deploy.records import save_record  # noqa: E402
from mlops_assets.deploy.training import train_paris  # noqa: E402
from resources import build_object_store  # noqa: E402
from resources.model_bucket import build_model_bucket, sha256_bytes  # noqa: E402
from resources.settings import PlatformSettings  # noqa: E402
from resources.snapshots import publish_snapshot  # noqa: E402
from tests.support import percentile, standalone_environment, uvicorn_server, wait_until_loaded  # noqa: E402


def deploy_demo(env: dict[str, str], compile_model: bool):
    import skops.io as sio
    from threadpoolctl import threadpool_limits

    settings = PlatformSettings.from_env(env)
    store, bucket = build_object_store(settings), build_model_bucket(settings, env)
    with threadpool_limits(1):
        trained = train_paris()
    data = sio.dumps(trained.pipeline)
    bucket.create_bucket(bucket.default_bucket)
    version = bucket.upload(bucket.default_bucket, "paris_airbnb_price.skops", data, "bench")
    demo = load_deployments()["paris_airbnb_price"]
    # The deployment as `mlops deploy --form --example` stores it (checks included), then its release.
    record = save_record(
        store,
        build_record(
            demo.name,
            trained.pipeline,
            {"source": "bucket", "key": version.key},
            form=demo.form_config,
            example=demo.raw_example,
            spec={"prediction": asdict(demo.prediction), "default": True},
        ),
    )
    deployment = record.deployment
    pin = write_pin(store, deployment.name, version, sha256_bytes(data))
    with threadpool_limits(1):
        compilation = compile_pipeline(deployment, trained.pipeline)  # as the deployment asset does
    print(f"compiled copy: {compilation.note}{'' if compile_model else ' (not published: --no-compile)'}")
    files = deployment_files(deployment, pin, "bench", compilation if compile_model else None, record)
    publish_snapshot(store, snapshot_system(deployment.name), files)
    compiled = CompiledModel(deployment, compilation.onnx) if compilation.onnx and compile_model else None
    return deployment, trained.pipeline, compiled, settings


def request(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    payload = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=payload, headers={"Content-Type": "application/json"} if payload else {})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def round_trip(conn: http.client.HTTPConnection, example: dict, long_poll: bool) -> tuple[float, str]:
    started = time.perf_counter()
    status, accepted = request(conn, "POST", "/api/paris_airbnb_price/predict", example)
    assert status == 202, accepted
    query = "?wait=5" if long_poll else ""
    while True:
        _, body = request(conn, "GET", f"/api/predict/{accepted['prediction_id']}{query}")
        if body["status"] == "COMPLETE":
            return time.perf_counter() - started, accepted["prediction_id"]
        if body["status"] == "ERROR":
            raise SystemExit(f"prediction failed: {body['body']}")
        time.sleep(0.0005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--no-compile", action="store_true", help="serve the Pipeline without its ONNX copy")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    env = {**standalone_environment(home, None), "MLOPS_MODEL_BUCKET": "", "MLOPS_SERVING_POLL_SECONDS": "1"}
    deployment, pipeline, compiled, settings = deploy_demo(env, compile_model=not args.no_compile)
    example = deployment.raw_example

    from threadpoolctl import threadpool_limits

    gc.freeze()  # as the server does once its models are loaded: the reference gets the same treatment
    with threadpool_limits(1):
        for _ in range(20):
            predict_value(deployment, pipeline, example)
        direct, after_idle, compiled_idle = [], [], []
        for _ in range(args.requests):
            started = time.perf_counter()
            predict_value(deployment, pipeline, example)
            direct.append(time.perf_counter() - started)
        for _ in range(args.requests):
            time.sleep(0.003)
            started = time.perf_counter()
            predict_value(deployment, pipeline, example)
            after_idle.append(time.perf_counter() - started)
            if compiled is not None:
                time.sleep(0.003)
                started = time.perf_counter()
                compiled.predict_value(example)
                compiled_idle.append(time.perf_counter() - started)
    gc.unfreeze()  # let the interpreter's exit collect everything (native extensions check for leaks then)

    with uvicorn_server(env) as base:
        wait_until_loaded(base, "DeploymentsWatcher:deploy", timeout=300)
        while not any(d["served"] for d in json.loads(urlopen(f"{base}/api/deployments").read())):
            time.sleep(0.1)  # the poller loads the snapshot right after the server starts
        conn = http.client.HTTPConnection("127.0.0.1", urlsplit(base).port, timeout=30)
        for _ in range(30):
            round_trip(conn, example, long_poll=False)
        trips, long_trips, ids = [], [], []
        for index in range(2 * args.requests):  # the two client styles interleaved: same conditions
            seconds, prediction_id = round_trip(conn, example, long_poll=bool(index % 2))
            (long_trips if index % 2 else trips).append(seconds)
            ids.append(prediction_id)

    db = sqlite3.connect(settings.home / "serving" / "deploy_queue.db")
    marks = ",".join("?" * len(ids))
    queued = [
        row[0]
        for row in db.execute(
            f"SELECT completed_at - created_at FROM predictions WHERE prediction_id IN ({marks})", ids
        )
    ]
    ms = 1000.0
    print(
        f"deploy round trip on 127.0.0.1, {args.requests} sequential requests, load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(
        f"POST -> COMPLETE (client, polling GET)   p50 {percentile(trips, 50) * ms:7.2f} ms   "
        f"p99 {percentile(trips, 99) * ms:7.2f} ms   mean {statistics.mean(trips) * ms:7.2f} ms"
    )
    print(
        f"POST -> COMPLETE (client, GET ?wait=5)   p50 {percentile(long_trips, 50) * ms:7.2f} ms   "
        f"p99 {percentile(long_trips, 99) * ms:7.2f} ms   mean {statistics.mean(long_trips) * ms:7.2f} ms"
    )
    print(
        f"enqueue -> COMPLETE (server-recorded)    p50 {percentile(queued, 50) * ms:7.2f} ms   "
        f"p99 {percentile(queued, 99) * ms:7.2f} ms"
    )
    print(
        f"bare Pipeline predict, back to back      p50 {percentile(direct, 50) * ms:7.2f} ms   "
        f"p99 {percentile(direct, 99) * ms:7.2f} ms"
    )
    print(
        f"bare Pipeline predict, after 3 ms idle   p50 {percentile(after_idle, 50) * ms:7.2f} ms   "
        f"p99 {percentile(after_idle, 99) * ms:7.2f} ms"
    )
    if compiled_idle:
        print(
            f"bare compiled predict, after 3 ms idle   p50 {percentile(compiled_idle, 50) * ms:7.2f} ms   "
            f"p99 {percentile(compiled_idle, 99) * ms:7.2f} ms   (onnxruntime)"
        )
    runtimes = Counter(
        json.loads(model).get("runtime")
        for (model,) in db.execute(f"SELECT model FROM predictions WHERE prediction_id IN ({marks})", ids)
    )
    print(f"runtime that answered: {dict(runtimes)}")
    served = percentile(compiled_idle if compiled_idle else after_idle, 50) * ms
    best = min(percentile(trips, 50), percentile(long_trips, 50)) * ms
    print(
        f"goal POST -> COMPLETE p50 <= 10 ms: {'met' if best <= 10 else 'NOT met'} ({best:.2f} ms); "
        f"over the bare predict of the served runtime: {best - served:.2f} ms"
    )


if __name__ == "__main__":
    main()
