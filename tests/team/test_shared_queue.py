"""Two API processes and two consumer processes share one PostgreSQL queue: 1,000 async predictions, one consumer
SIGKILLed midway while it holds a claimed row; none lost, none completed twice, every answer the served model's.

Real processes on 127.0.0.1: two uvicorn APIs that only enqueue and answer (`MLOPS_DEPLOY_WORKER=0`), two
`python -m serving.deploy_consumer`, one PostgreSQL (tests/team/conftest.py). The consumer is frozen (SIGSTOP)
until it is caught holding a claimed PENDING row and then killed, so the test always covers the in-flight row.
A trigger, added by the test only, records every write of COMPLETE: each id must appear there exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import REPO_ROOT, process_state, standalone_environment, stop_process, uvicorn_server, wait_for

psycopg2 = pytest.importorskip("psycopg2")

from mlops_assets.deploy.config import validated_row  # noqa: E402
from resources import build_object_store, build_registry  # noqa: E402
from resources.model_bucket import build_model_bucket  # noqa: E402
from resources.settings import PlatformSettings  # noqa: E402
from serving.deploy_queue_pg import TABLE, PgDeployQueue, libpq_url  # noqa: E402
from serving.deploy_served import load_served  # noqa: E402
from tests.deploy.helpers import skops_bytes, small_paris_pipeline, upload_and_deploy  # noqa: E402

N = 1000
NAME = "paris_airbnb_price"
AUDIT = """
CREATE TABLE completions (prediction_id TEXT NOT NULL, claimed_by TEXT, attempts INTEGER);
CREATE FUNCTION record_completion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO completions VALUES (NEW.prediction_id, NEW.claimed_by, NEW.attempts); RETURN NEW; END $$;
CREATE TRIGGER record_completion AFTER UPDATE ON deploy_predictions FOR EACH ROW
    WHEN (NEW.status = 'COMPLETE') EXECUTE FUNCTION record_completion();
"""


def call(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def requests_and_answers(served) -> list[tuple[dict, float]]:
    """N requests (180 distinct rows, so a mixed-up answer shows) and the value the served model gives each,
    computed here by the consumers' own code from the published snapshot (ONNX copy included)."""
    rows = []
    for i in range(N):
        row = {
            **served.deployment.raw_example,
            "voyageurs": 1 + i % 6,
            "chambres": 1 + (i // 6) % 3,
            "mois": 1 + i % 12,
            "minimum_nights": 1 + i % 5,
        }
        rows.append((row, served.predict(validated_row(served.deployment, json.dumps(row).encode()))[0]))
    assert len({value for _, value in rows}) > 20
    return rows


@pytest.fixture(scope="module")
def platform(postgres, tmp_path_factory):
    """The environment every process shares: one home folder (object store, model bucket), one queue URL."""
    postgres.create_database("shared_queue")
    url = postgres.url("shared_queue")
    home = tmp_path_factory.mktemp("shared")
    env = {
        **standalone_environment(home, None),
        "MLOPS_SERVING_POLL_SECONDS": "0.2",
        "MLOPS_MODEL_BUCKET": "",
        "MLOPS_DEPLOY_QUEUE_URL": url,
        "MLOPS_DEPLOY_WORKER": "0",  # the APIs only enqueue and answer: the consumers predict
    }
    settings = PlatformSettings.from_env(env)
    store, bucket = build_object_store(settings), build_model_bucket(settings, env)
    pointer = upload_and_deploy(store, bucket, NAME, skops_bytes(small_paris_pipeline()))
    served = load_served(bucket, store, pointer)
    # Four processes would otherwise race to create MLflow's SQLite tables (the other systems' watchers poll it).
    build_registry(settings).client().search_experiments()
    PgDeployQueue(url).close()  # the table exists before the test adds its trigger
    with psycopg2.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute(AUDIT)
    return env, url, served


def start_consumer(env: dict, log_path) -> subprocess.Popen:
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.deploy_consumer", "--recover-seconds", "0.5"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return process


def sql(url: str, query: str, params=()) -> list[tuple]:
    with psycopg2.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


HELD = "WHERE status = 'PENDING' AND claimed_by LIKE %s"  # the rows a consumer (by the pid in its id) holds


def stopped(pid: int) -> bool:
    """SIGSTOP is delivered asynchronously: the process is frozen once the kernel shows it in state T."""
    return process_state(pid) == "T"


def kill_holding_a_claim(process: subprocess.Popen, url: str, tries: int = 400) -> str:
    """SIGKILL `process` at a moment it holds a claimed PENDING row (found while it is frozen); that row's id.

    Frozen is not enough: the statement completing the row may have left the process just before it stopped and
    still be running in its PostgreSQL backend. So the row counts as held once that backend is idle and the row
    is still PENDING under the process's claim."""
    mine = f"%:{process.pid}:%"
    for _ in range(tries):
        process.send_signal(signal.SIGSTOP)
        wait_for(lambda: stopped(process.pid), f"consumer {process.pid} stopped", timeout=10, interval=0.001)
        time.sleep(0.02)  # bytes already in the socket reach the backend, which then shows as active
        held = sql(url, f"SELECT prediction_id, claimed_backend FROM {TABLE} {HELD}", (mine,))
        if held:
            prediction_id, backend = held[0]
            wait_for(
                lambda b=backend: (
                    not sql(url, "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'", (b,))
                ),
                f"backend {backend} of consumer {process.pid} idle",
                timeout=10,
                interval=0.005,
            )
            if sql(url, f"SELECT 1 FROM {TABLE} {HELD} AND prediction_id = %s", (mine, prediction_id)):
                process.kill()
                process.wait(timeout=10)
                return prediction_id
        process.send_signal(signal.SIGCONT)
        time.sleep(0.003)
    raise AssertionError(f"consumer {process.pid} never caught holding a claim in {tries} tries")


def test_two_apis_and_two_consumers_drain_1000_predictions_with_one_consumer_killed(platform, tmp_path):
    env, url, served = platform
    work = requests_and_answers(served)
    consumers = [start_consumer(env, tmp_path / f"consumer{i}.log") for i in range(2)]
    try:
        with (
            uvicorn_server(env, log_path=tmp_path / "api0.log") as api0,
            uvicorn_server(env, log_path=tmp_path / "api1.log") as api1,
        ):
            apis = [api0, api1]
            for base in apis:
                wait_for(lambda b=base: _served(b), f"{NAME} served by {base}", timeout=120, interval=0.2)
            ids: list[str | None] = [None] * N

            def submit(i: int) -> None:
                status, body = call(f"{apis[i % 2]}/api/{NAME}/predict", work[i][0])
                assert status == 202, body
                ids[i] = body["prediction_id"]

            with ThreadPoolExecutor(8) as pool:
                submitting = [pool.submit(submit, i) for i in range(N)]
                # Midway: once the victim has completed a share of the rows, while requests are still arriving.
                victim, survivor = consumers
                wait_for(
                    lambda: _completed_by(url, victim.pid) >= 100, "the victim's first 100 completions", timeout=300
                )
                in_flight = kill_holding_a_claim(victim, url)
                killed_at = time.time()
                for future in submitting:
                    future.result()
            assert len(set(ids)) == N and None not in ids  # every request accepted, under its own id

            # Through the APIs (each asked for the other's ids too): every id COMPLETE with the served model's value.
            def answer(i: int) -> dict:
                deadline = time.monotonic() + 60
                while True:
                    status, body = call(f"{apis[(i + 1) % 2]}/api/predict/{ids[i]}?wait=10")
                    assert status == 200, body
                    if body["status"] != "PENDING" or time.monotonic() > deadline:
                        return body

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(answer, range(N)))
            wrong = [(i, a["status"], a["body"], work[i][1]) for i, a in enumerate(answers) if a["body"] != work[i][1]]
            assert not wrong, f"{len(wrong)} answers differ from the model's, e.g. {wrong[:3]}"
            assert {a["status"] for a in answers} == {"COMPLETE"}
    finally:
        for process in consumers:
            stop_process(process)

    # In the table: one row per id, each completed once, every claim counted.
    rows = {
        pid: (status, result, attempts, claimed_by)
        for pid, status, result, attempts, claimed_by in sql(
            url, f"SELECT prediction_id, status, result, attempts, claimed_by FROM {TABLE}"
        )
    }
    assert set(rows) == set(ids)
    completions = sql(url, "SELECT prediction_id, count(*) FROM completions GROUP BY prediction_id")
    assert len(completions) == N and {count for _, count in completions} == {1}, "a row was completed twice"
    by_worker = {}
    for prediction_id, (status, result, attempts, claimed_by) in rows.items():
        assert status == "COMPLETE" and result is not None and attempts >= 1
        by_worker.setdefault(int(claimed_by.split(":")[1]), []).append(prediction_id)
    assert set(by_worker) == {victim.pid, survivor.pid}
    assert len(by_worker[victim.pid]) >= 100 and len(by_worker[survivor.pid]) >= N // 4
    # Only the row the victim held when it died was claimed twice; the survivor finished it.
    retried = {prediction_id: row[2] for prediction_id, row in rows.items() if row[2] != 1}
    assert retried == {in_flight: 2}
    assert rows[in_flight][3].split(":")[1] == str(survivor.pid)
    # Released by the survivor's dead-claimer check, well before the 60 s lease would have run out.
    (completed_at,) = sql(url, f"SELECT completed_at FROM {TABLE} WHERE prediction_id = %s", (in_flight,))[0]
    assert completed_at - killed_at < 30, completed_at - killed_at
    log = (tmp_path / "consumer1.log").read_text()
    assert "released 1 prediction(s) claimed by a dead consumer" in log


def _served(base: str) -> bool:
    return any(d["name"] == NAME and d["served"] for d in call(f"{base}/api/deployments")[1])


def _completed_by(url: str, pid: int) -> int:
    return sql(url, f"SELECT count(*) FROM {TABLE} WHERE status = 'COMPLETE' AND claimed_by LIKE %s", (f"%:{pid}:%",))[
        0
    ][0]
