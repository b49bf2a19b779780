"""Titanic figures: bootstrap (first materialization) time, holdout accuracy, predict latency over HTTP.

    .venv/bin/python scripts/bench_titanic.py [--requests 1000]

Runs against a temporary MLOPS_HOME with the real data (MLOPS_DATA_DIR, else ../shared/data) and a real
uvicorn process on 127.0.0.1; prints its figures and leaves nothing behind.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dagster as dg
import httpx

from tests.support import (
    percentile,
    shared_data_dir,
    standalone_environment,
    uvicorn_server,
    wait_until_loaded,
)

PASSENGER = {"age_band": "25-30", "port": "Cherbourg", "sex": "female", "fare_band": "50-75", "pclass": 1}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    data = shared_data_dir()
    if data is None:
        sys.exit("no real data: set MLOPS_DATA_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        env = standalone_environment(Path(tmp) / "mlops", data)
        os.environ.update(env)
        from mlops_assets.definitions import defs
        from mlops_assets.titanic import bootstrap as titanic

        started = time.perf_counter()
        definitions = defs()
        with dg.instance_for_test(temp_dir=tmp) as instance:
            titanic.bootstrap(definitions, instance)
            bootstrap_s = time.perf_counter() - started
            model = instance.get_latest_materialization_event(dg.AssetKey(["titanic", "survival_model"]))
            meta = model.asset_materialization.metadata
        with uvicorn_server(env) as base:
            wait_until_loaded(base, "ChampionWatcher:titanic_modal")
            latencies = []
            with httpx.Client(base_url=base) as client:
                for _ in range(50):  # warm-up
                    client.post("/titanic/predict", json=PASSENGER)
                for _ in range(args.requests):
                    t0 = time.perf_counter()
                    response = client.post("/titanic/predict", json=PASSENGER)
                    latencies.append((time.perf_counter() - t0) * 1000)
                    assert response.status_code == 200
        print(
            f"bootstrap (load + {titanic.BOOTSTRAP_DAYS} days: features, model, predictions, pictures): {bootstrap_s:.1f} s"
        )
        print(
            f"holdout accuracy (all holdout rows): {meta['accuracy'].value:.4f}; "
            f"real passengers only: {meta['kaggle_holdout_accuracy'].value:.4f}"
        )
        print(
            f"POST /titanic/predict over HTTP, {args.requests} sequential requests: "
            f"p50 {statistics.median(latencies):.2f} ms, p99 {percentile(latencies, 99):.2f} ms, "
            f"mean {statistics.fmean(latencies):.2f} ms"
        )


if __name__ == "__main__":
    main()
