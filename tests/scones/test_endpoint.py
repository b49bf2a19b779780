"""classify_images through the serving API (a real uvicorn process) against the champion loaded in the run."""

import contextlib
import hashlib
import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading

import duckdb
import pytest

from mlops_assets.scones.classifier import CLASSIFY_ROUTE, IN_PROCESS, SconesClassifier
from mlops_assets.scones.constants import CAPTURE_TABLE, THRESHOLD_FAILURE
from mlops_assets.scones.inference import event_io_resources, image_workflow
from mlops_assets.scones.workflow import INVALID_IMAGE, PASSED
from resources import build_object_store, build_resources
from tests.support import REPO_ROOT, free_port

pytestmark = pytest.mark.realdata

IMAGES = (
    "bicycle_s_000030.png",
    "bicycle_s_000513.png",
    "bike_s_000658.png",
    "motorbike_s_000121.png",
    "minibike_s_000052.png",
)
NOT_AN_IMAGE = ("notes.png", b"plain text, not an image")
HEAVY = ("mlflow", "sklearn", "skops")


def put_batch(platform, prefix: str) -> list[dict]:
    """The test images (and one that is not an image) stored under `prefix`, as the sensor's landings."""
    store = build_object_store(platform.settings)
    files = [(name, (platform.data / "scones" / "test" / name).read_bytes()) for name in IMAGES] + [NOT_AN_IMAGE]
    landings = []
    for name, data in files:
        key = f"{prefix}/{name}"
        store.put_bytes(key, data)
        landings.append({"s3_bucket": "local", "s3_key": key, "etag": hashlib.md5(data).hexdigest(), "size": len(data)})
    return landings


def run_batch(platform, prefix: str, classifier: SconesClassifier):
    resources = {**build_resources(platform.settings), **event_io_resources, "scones_classifier": classifier}
    job = image_workflow.to_job(name="scones_inference", resource_defs=resources)
    config = {"ops": {"serialize_images": {"config": {"landings": put_batch(platform, prefix)}}}}
    result = job.execute_in_process(run_config=config, instance=platform.instance, raise_on_error=False)
    messages = [(event.level, event.message or "") for event in platform.instance.all_logs(result.run_id)]
    warnings = [message for level, message in messages if level >= 30 and "did not answer" in message]
    answered = {
        message.split(" → ")[0].rsplit("/", 1)[-1]: message.rsplit("answered by ", 1)[-1].rstrip(")")
        for _, message in messages
        if " → " in message and "answered by " in message
    }
    return captured(platform, prefix), warnings, answered


def captured(platform, prefix: str) -> dict[str, tuple]:
    with duckdb.connect(str(platform.settings.duckdb_path), read_only=True) as connection:
        rows = connection.execute(
            f"SELECT s3_key, verdict, p_bicycle, p_motorcycle, model_version FROM {CAPTURE_TABLE} "
            "WHERE s3_key LIKE ? ORDER BY s3_key",
            [f"{prefix}/%"],
        ).fetchall()
    return {key.rsplit("/", 1)[-1]: tuple(rest) for key, *rest in rows}


@pytest.fixture(scope="module")
def in_process(scones_platform):
    rows, warnings, answered = run_batch(scones_platform, "scones/endpoint-test/in-process", SconesClassifier())
    assert warnings == [] and set(answered.values()) == {IN_PROCESS}
    return rows


def test_endpoint_gives_the_in_process_verdicts_and_probabilities(scones_platform, scones_server, in_process):
    rows, warnings, answered = run_batch(
        scones_platform, "scones/endpoint-test/endpoint", SconesClassifier(endpoint_url=scones_server)
    )
    # Every image was answered by the endpoint, none by the fallback.
    assert warnings == [] and answered == dict.fromkeys(IMAGES, scones_server + CLASSIFY_ROUTE)
    assert set(rows) == {*IMAGES, NOT_AN_IMAGE[0]}
    verdicts = {row[0] for row in rows.values()}
    assert PASSED in verdicts and INVALID_IMAGE in verdicts, rows
    assert verdicts <= {PASSED, THRESHOLD_FAILURE, INVALID_IMAGE}
    for name, (verdict, p_bicycle, p_motorcycle, version) in rows.items():
        expected = in_process[name]
        assert verdict == expected[0], name
        if verdict != INVALID_IMAGE:
            assert (p_bicycle, p_motorcycle) == pytest.approx(expected[1:3], abs=1e-9), name
            assert version == expected[3] == "1"


@contextlib.contextmanager
def answering(status: int):
    """A real HTTP server on a free port that answers every request with `status`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"detail": "no champion version of scones_classifier yet"}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("case", ["unreachable", "503", "404"])
def test_an_endpoint_that_cannot_answer_falls_back_to_the_champion_in_the_run(scones_platform, in_process, case):
    with contextlib.ExitStack() as stack:
        url = f"http://127.0.0.1:{free_port()}" if case == "unreachable" else stack.enter_context(answering(int(case)))
        rows, warnings, answered = run_batch(
            scones_platform, f"scones/endpoint-test/{case}", SconesClassifier(endpoint_url=url)
        )
    assert rows == in_process  # no image lost, the same answers
    assert len(warnings) == 1 and url in warnings[0]  # said once, in the step's log
    assert answered == dict.fromkeys(IMAGES, IN_PROCESS)


RUN_WORKER = textwrap.dedent("""
    import json, sys
    from mlops_assets.definitions import defs
    import dagster as dg

    job = defs().resolve_job_def("scones_inference")
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(run_config=json.loads(sys.argv[1]), instance=instance, raise_on_error=False)
    print(json.dumps({"heavy": [m for m in sys.argv[2:] if m in sys.modules], "success": result.success}))
""")


def test_a_run_classified_by_the_endpoint_imports_no_model_library(scones_platform, scones_server, in_process):
    """What a run worker for the job does: load the code location, run the batch; with the endpoint set, neither
    MLflow nor scikit-learn nor skops is imported."""
    landings = [
        landing
        for landing in put_batch(scones_platform, "scones/endpoint-test/worker")
        if landing["s3_key"].endswith(IMAGES[0])
    ]
    config = {"ops": {"serialize_images": {"config": {"landings": landings}}}}
    env = {**os.environ, **scones_platform.env, "MLOPS_SCONES_ENDPOINT_URL": scones_server}
    output = subprocess.run(
        [sys.executable, "-c", RUN_WORKER, json.dumps(config), *HEAVY],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(output.strip().splitlines()[-1])
    assert report["heavy"] == []
    # The run fails exactly when its one image did not pass (the filter's loud failure), as in-process.
    assert report["success"] == (in_process[IMAGES[0]][0] == PASSED)
    assert captured(scones_platform, "scones/endpoint-test/worker") == {IMAGES[0]: in_process[IMAGES[0]]}
