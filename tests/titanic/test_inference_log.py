"""Titanic's answers in the inference log: the receipt end to end, and what a real uvicorn process keeps on disk
when it is killed (SIGKILL), and what the app writes when it stops."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import httpx
import pyarrow.parquet as pq
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mlops_assets.titanic.constants import MODEL_NAME
from resources import build_object_store, build_registry
from resources.mlflow_registry import CHAMPION
from serving import predictions, titanic
from serving.app import create_app
from serving.context import ServingContext
from tests.support import (
    REPO_ROOT,
    api_command,
    free_port,
    process_state,
    stop_process,
    wait_for,
    wait_for_http,
    wait_until_loaded,
)
from tests.titanic.test_serving import PASSENGER


def on_disk(store) -> list[str]:
    keys = [i.key for i in store.list_objects("titanic/inference_log/") if i.key.endswith(".parquet")]
    return [pid for key in keys for pid in pq.read_table(io.BytesIO(store.get_bytes(key)))["prediction_id"].to_pylist()]


def test_a_prediction_and_its_receipt(titanic_platform, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", titanic_platform.instance.root_directory)
    ctx = ServingContext.from_settings(titanic_platform.settings, poll_seconds=0.1)
    app = FastAPI()
    app.include_router(titanic.build_router(ctx))
    app.include_router(predictions.build_router(ctx, ["titanic"]))
    ctx.poller.start()
    try:
        wait_for(lambda: ctx.poller.watchers[0].current, "the champion", timeout=120)
        client = TestClient(app)
        answer = client.post("/titanic/predict", json=PASSENGER).json()
        response = client.get(f"/predictions/{answer['prediction_id']}")
    finally:
        ctx.poller.stop()
    assert response.status_code == 200, response.text
    logged, receipt = response.json()["prediction"], response.json()["receipt"]
    assert (logged["system"], logged["route"], logged["inputs"]) == ("titanic", "/titanic/predict", answer["features"])
    assert logged["output"] == {k: v for k, v in answer.items() if k != "prediction_id"}
    champion = build_registry(titanic_platform.settings).version_by_alias(MODEL_NAME, CHAMPION)
    assert receipt["model"]["version"] == str(champion.version) == logged["model_version"]
    assert receipt["model"]["registry_url"].endswith(f"/models/{MODEL_NAME}/versions/{champion.version}")
    assert receipt["mlflow_run"]["run_id"] == champion.run_id
    assert receipt["mlflow_run"]["url"] == answer["lineage"]["mlflow_run_url"]
    run_id = champion.tags["dagster_run_id"]
    assert receipt["dagster_run"]["run_id"] == run_id and receipt["dagster_run"]["status"] == "SUCCESS"
    made = receipt["model_materialization"]
    assert made["asset_key"] == "titanic/survival_model" and made["code_version"] == receipt["code_version"] == "1"
    # The training data is the split the model read: its data version as that run recorded it, and where the
    # split was materialized in the same run, exactly that materialization.
    [split] = receipt["training_data"]
    assert split["asset_key"] == "titanic/training_split" and split["data_version"]
    same_run = [
        r.event_log_entry.asset_materialization
        for r in titanic_platform.instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
    ]
    versions = {m.tags["dagster/data_version"] for m in same_run if m.asset_key.path[-1] == "training_split"}
    assert not versions or versions == {split["data_version"]}


def start_api(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        api_command(port),
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/health", timeout=300, process=process)
        wait_until_loaded(base, f"ChampionWatcher:{MODEL_NAME}", timeout=300)
    except BaseException:
        stop_process(process)
        raise
    return process, base


def ask(client: httpx.Client, count: int) -> list[str]:
    return [client.post("/titanic/predict", json=PASSENGER).json()["prediction_id"] for _ in range(count)]


def log_writer_of(process: subprocess.Popen) -> int | None:
    """The pid of the API's inference-log writer process (serving.log_writer), once it runs."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return next((int(c) for c in children if b"serving.log_writer" in Path(f"/proc/{c}/cmdline").read_bytes()), None)


def ended(pid: int) -> bool:
    return process_state(pid) in (None, "Z", "X")


def test_sigkill_of_the_api_loses_only_the_answers_it_had_not_handed_to_its_writer(titanic_platform):
    store = build_object_store(titanic_platform.settings)
    before = set(on_disk(store))
    process, base = start_api({**titanic_platform.env, "MLOPS_INFERENCE_LOG_FLUSH_SECONDS": "0.5"})
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            older = ask(client, 20)  # the API starts its log writer with the first answer
            writer = wait_for(lambda: log_writer_of(process), "the API's log writer")
            # Written by the timer alone, no shutdown: every answer older than the flush interval is on disk.
            wait_for(lambda: set(older) <= set(on_disk(store)), "the first answers on disk", timeout=60)
            newest = ask(client, 10)
        time.sleep(0.2)  # ten times the 20 ms after which the API hands its answers to the writer
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        # The writer outlives the API just long enough to write what it was given: its pipe closed with the API.
        wait_for(lambda: ended(writer), "the writer to end after the API", timeout=30)
    finally:
        stop_process(process)
    assert set(on_disk(store)) - before == set(older) | set(newest)  # nothing handed over is lost


def test_a_log_writer_killed_mid_work_is_replaced_and_no_answer_fails_or_goes_unlogged(titanic_platform):
    store = build_object_store(titanic_platform.settings)
    before = set(on_disk(store))
    process, base = start_api({**titanic_platform.env, "MLOPS_INFERENCE_LOG_FLUSH_SECONDS": "0.3"})
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            answered = ask(client, 30)
            first = wait_for(lambda: log_writer_of(process), "the API's log writer")
            os.kill(first, signal.SIGKILL)
            answered += ask(client, 30)  # answered while the writer is dead and replaced
            second = wait_for(lambda: log_writer_of(process), "a new log writer")
            answered += ask(client, 30)
        assert second != first
        wait_for(lambda: set(answered) <= set(on_disk(store)), "every answer on disk", timeout=60)
    finally:
        stop_process(process)  # SIGTERM: the API's shutdown, after which its writer ends
    wait_for(lambda: ended(second), "the writer to end with the API", timeout=30)
    assert set(on_disk(store)) - before == set(answered)


def test_the_app_shutdown_writes_everything_buffered(titanic_platform, monkeypatch):
    """What uvicorn runs on SIGTERM: the app's lifespan shutdown (in-process here; the model is loaded already)."""
    store = build_object_store(titanic_platform.settings)
    # A flush interval longer than the test: only the shutdown can have written these.
    monkeypatch.setenv("MLOPS_INFERENCE_LOG_FLUSH_SECONDS", "3600")
    app = create_app(titanic_platform.settings, poll_seconds=0.1)
    with TestClient(app) as client:
        wait_for(
            lambda: client.get("/health").json()["loaded"][f"ChampionWatcher:{MODEL_NAME}"], "the champion", timeout=120
        )
        answered = [client.post("/titanic/predict", json=PASSENGER).json()["prediction_id"] for _ in range(25)]
        assert not set(answered) & set(on_disk(store))
    assert set(answered) <= set(on_disk(store))
