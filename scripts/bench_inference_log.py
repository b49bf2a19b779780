"""What the inference log costs: `/classify` (Pistachio) and the seven Steam endpoints with logging on and off,
then how fast the hourly `inference_log` asset ingests.

    .venv/bin/python scripts/bench_inference_log.py [--requests 30000] [--clients 16] [--rounds 6] [--ingest-rows 100000]

Everything runs in a temporary MLOPS_HOME on 127.0.0.1. A Pistachio champion is trained and promoted (the
96-configuration sweep of bench_pistachio.py) and a small Steam snapshot is published; then two API processes
(uvicorn, one worker each) serve them, one with `MLOPS_INFERENCE_LOG=on`, one with `off`. Rounds alternate
between the two, so a machine that gets busier or quieter mid-run shifts both alike; each round is `--requests`
requests from `--clients` keep-alive clients after a warm-up, long enough (2 s and more) to hold several of the
writer's one-second flushes: a round shorter than the flush interval catches a flush or not by chance. The figure
is the p99 of all rounds with logging over the p99 without (goal: at most +10 %); the spread of the rounds' own
ratios is printed beside it, and each server's CPU time per answer (all its threads, from /proc): what logging
costs in work, which on two cores shared with the load generator becomes waiting. Last, `--ingest-rows` rows in
files as the API writes them are ingested into DuckDB by the `inference_log` asset (one hourly partition), timed
as a whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_pistachio import SAMPLE, cpu_seconds, stop, train_champion, wait_until_ok  # noqa: E402
from httpload import drive, get_message, post_message, status  # noqa: E402

from tests.support import api_command, free_port, percentile, standalone_environment  # noqa: E402

STEAM_PATHS = [
    "/steam/PlayTimeGenre/Action",
    "/steam/UserForGenre/Action",
    "/steam/UsersRecommend/2015",
    "/steam/UsersNotRecommend/2015",
    "/steam/sentiment_analysis/2015",
    "/steam/game_recommendation/1",
    "/steam/user_recommendation/Alice",
]


def publish_steam(env: dict[str, str]) -> None:
    os.environ.update(env)
    from resources import build_object_store
    from resources.settings import PlatformSettings
    from tests.steam.test_serving import publish

    publish(build_object_store(PlatformSettings.from_env()))


def ingest_rate(home: Path, rows: int, rows_per_file: int = 500) -> tuple[float, int]:
    """Seconds to materialize one hour holding `rows` logged answers, written as the API writes them."""
    import dagster as dg
    from dagster_duckdb_pandas import DuckDBPandasIOManager

    from mlops_assets.common.inference_log import inference_log_asset
    from resources.object_store import LocalObjectStore
    from resources.tables import DuckDBTables
    from serving.inference_log import new_prediction_id
    from serving.log_rows import parquet_bytes_of, record_batch

    store = LocalObjectStore(root=str(home / "ingest-objects"))
    hour = datetime(2026, 3, 10, 14, tzinfo=UTC)
    start_ns = int(hour.timestamp() * 1e9)
    written = 0
    while written < rows:
        batch = []
        for i in range(min(rows_per_file, rows - written)):
            pid, logged_us = new_prediction_id(start_ns + (written + i) * 10_000_000)
            batch.append(
                (
                    pid,
                    logged_us,
                    "pistachio",
                    "/classify",
                    "Pistachio_Classifier",
                    "3",
                    SAMPLE,
                    b'{"Type":"Kirmizi_Pistachio","Model":"Pistachio_Classifier"}',
                    {"alias": "champion"},
                )
            )
        store.put_bytes(
            f"pistachio/inference_log/hour=2026-03-10-14/{batch[0][0]}.parquet",
            parquet_bytes_of([record_batch(batch)]),
        )
        written += len(batch)
    database = str(home / "ingest.duckdb")
    resources = {
        "object_store": store,
        "warehouse": DuckDBTables(database=database),
        "io_manager": DuckDBPandasIOManager(database=database),
    }
    asset = inference_log_asset("pistachio")
    started = time.perf_counter()
    result = dg.materialize([asset], partition_key="2026-03-10-14:00", resources=resources)
    seconds = time.perf_counter() - started
    count = result.asset_materializations_for_node(asset.op.name)[0].metadata["dagster/row_count"].value
    return seconds, count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--ingest-rows", type=int, default=100_000)
    parser.add_argument("--only", choices=["classify", "steam"], help="measure one workload only")
    parser.add_argument("--data-dir", default=os.environ.get("MLOPS_DATA_DIR") or str(REPO.parent / "shared" / "data"))
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-inference-log-"))
    env = standalone_environment(home, Path(args.data_dir).resolve())
    print(f"state in {home}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    train_champion(env)
    publish_steam(env)

    servers = {}
    try:
        for setting in ("on", "off"):
            port = free_port()
            process = subprocess.Popen(
                api_command(port, "--no-access-log"),
                cwd=REPO,
                env={**os.environ, **env, "MLOPS_INFERENCE_LOG": setting},
                stdout=subprocess.DEVNULL,
                stderr=(home / f"api-{setting}.log").open("wb"),  # read when it fails to start
                start_new_session=True,
            )
            servers[setting] = (process, port)
        for setting, (process, port) in servers.items():
            # Both servers load their models at once; a loaded machine needs minutes for that.
            try:
                wait_until_ok(f"http://127.0.0.1:{port}/classify", SAMPLE, process, timeout=900)
            except RuntimeError:
                print((home / f"api-{setting}.log").read_text()[-3000:], file=sys.stderr)
                raise
            for path in STEAM_PATHS:
                deadline = time.monotonic() + 300
                while asyncio.run(status(port, path)) != 200:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{path} not answering on the logging-{setting} server")
                    time.sleep(0.3)
        workloads = {
            "pistachio POST /classify": lambda port: [post_message(port, "/classify", SAMPLE)],
            "steam, 7 GET endpoints": lambda port: [get_message(port, path) for path in STEAM_PATHS],
        }
        if args.only:
            workloads = {name: messages for name, messages in workloads.items() if args.only in name}
        latencies = {(w, s): [] for w in workloads for s in servers}
        round_p99 = {(w, s): [] for w in workloads for s in servers}
        # CPU seconds of the server with its children (a log writer process), of the server alone; wall seconds
        busy = {(w, s): [0.0, 0.0, 0.0] for w in workloads for s in servers}
        for workload, messages in workloads.items():
            for setting, (_, port) in servers.items():
                asyncio.run(drive(port, messages(port), min(500, args.requests), args.clients))  # warm-up
            for _ in range(args.rounds):
                for setting, (process, port) in servers.items():
                    cpu, own = cpu_seconds(process.pid), cpu_seconds(process.pid, children=False)
                    wall, taken = asyncio.run(drive(port, messages(port), args.requests, args.clients))
                    busy[(workload, setting)][0] += cpu_seconds(process.pid) - cpu
                    busy[(workload, setting)][1] += wall
                    busy[(workload, setting)][2] += cpu_seconds(process.pid, children=False) - own
                    latencies[(workload, setting)] += taken
                    round_p99[(workload, setting)].append(percentile(sorted(taken), 99))
    finally:
        for process, _ in servers.values():
            stop(process)

    print(
        f"\n{args.clients} concurrent keep-alive clients, {args.rounds} alternating rounds of {args.requests} "
        f"requests per server; load average now {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'workload':<28}{'log':>5}{'p50 ms':>10}{'p99 ms':>10}{'server CPU/answer':>20}{'(of it, API alone)':>20}"
        f"{'answers/s':>11}"
    )
    for workload in workloads:
        p99 = {}
        for setting in servers:
            ordered = sorted(latencies[(workload, setting)])
            p99[setting] = percentile(ordered, 99) * 1000
            cpu, wall, own = busy[(workload, setting)]
            answered = len(ordered)
            print(
                f"{workload:<28}{setting:>5}{percentile(ordered, 50) * 1000:>10.2f}{p99[setting]:>10.2f}"
                f"{cpu / answered * 1e6:>17.1f} µs{own / answered * 1e6:>17.1f} µs{answered / wall:>11,.0f}"
            )
        added = (p99["on"] / p99["off"] - 1) * 100
        print(f"{'':<28}p99 with logging {added:+.1f} %  (goal <= +10 %: {'met' if added <= 10 else 'NOT met'})")
        rounds = sorted(
            (on / off - 1) * 100
            for on, off in zip(round_p99[(workload, "on")], round_p99[(workload, "off")], strict=True)
        )
        print(
            f"{'':<28}the rounds' own p99 ratios: median {rounds[len(rounds) // 2]:+.1f} %, "
            f"from {rounds[0]:+.1f} to {rounds[-1]:+.1f} %"
        )

    seconds, rows = ingest_rate(home, args.ingest_rows)
    print(
        f"\ningest: {rows:,} rows of one hour in {seconds:.2f} s (whole in-process run) = {rows / seconds:,.0f} rows/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
