"""The README's first command with real processes: `up` prepares the stores once, starts every server, keeps
the console readable, restarts a server that dies, refuses a port in use, and Ctrl-C stops every process."""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support import REPO_ROOT, free_port, shared_data_dir

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find every descendant")

START_TIMEOUT = 900  # a ceiling for a loaded 2-core machine; every wait ends as soon as its condition holds


def processes_with(marker: str) -> list[int]:
    """Running processes whose environment carries `marker` (every descendant of `up` inherits it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (
                marker.encode() in (entry / "environ").read_bytes()
                and b"Z" != (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def pids_running(marker: str, *words: str) -> list[int]:
    """Processes of this `up` whose command line contains every word."""
    found = []
    for pid in processes_with(marker):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if all(word in command for word in words):
            found.append(pid)
    return found


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s"
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


class Up:
    """`python3 dev.py up` on a temporary home and free ports, its console collected line by line."""

    def __init__(self, home: Path, *options: str, env: dict[str, str] | None = None):
        self.home = home
        self.ui, self.api, self.mlflow = free_port(), free_port(), free_port()
        self.marker = f"MLOPS_HOME={home}"
        data = shared_data_dir()
        base = {
            **os.environ,
            "MLOPS_HOME": str(home),
            "MLOPS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            "MLFLOW_TRACKING_URI": "",
            "MLOPS_DUCKDB_PATH": "",
            "MLOPS_MLFLOW_ARTIFACT_ROOT": "",
            "MLOPS_MLFLOW_UI_URL": "",
            "MLOPS_DATA_DIR": str(data) if data else "",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "dev.py",
                "up",
                "--ui-port",
                str(self.ui),
                "--api-port",
                str(self.api),
                "--mlflow-port",
                str(self.mlflow),
                *options,
            ],
            cwd=REPO_ROOT,
            env={**base, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def console(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, text: str, timeout: float = START_TIMEOUT) -> str:
        def seen():
            found = [line for line in self.lines if text in line]
            assert found or self.process.poll() is None, f"up exited with {self.process.returncode}:\n{self.console}"
            return found[-1] if found else None

        return wait_for(seen, timeout, f"console line {text!r}:\n{self.console}")

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=120)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        for pid in processes_with(self.marker):
            os.kill(pid, signal.SIGKILL)


def assert_started_cleanly(up: Up) -> None:
    """Every server answers, the daemon reports healthy, and the shared stores were created exactly once."""
    assert answers(f"http://127.0.0.1:{up.ui}/server_info")
    assert httpx.get(f"http://127.0.0.1:{up.api}/health").json()["status"] == "ok"
    assert answers(f"http://127.0.0.1:{up.mlflow}/health")
    query = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"

    def daemon_healthy():
        statuses = httpx.post(f"http://127.0.0.1:{up.ui}/graphql", json={"query": query}, timeout=30).json()
        statuses = statuses["data"]["instance"]["daemonHealth"]["allDaemonStatuses"]
        return all(s["healthy"] for s in statuses if s["required"])

    wait_for(daemon_healthy, 300, "the Dagster daemon reports healthy")

    dagster_home = up.home / "dagster_home"
    for db in (
        dagster_home / "schedules" / "schedules.db",
        dagster_home / "history" / "runs.db",
        dagster_home / "history" / "runs" / "index.db",
        up.home / "mlflow.db",
    ):
        with sqlite3.connect(db) as connection:
            assert len(connection.execute("select * from alembic_version").fetchall()) == 1, db
    for log in (up.home / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert "more than one head" not in text and not re.search(r"table \S+ already exists", text), log


def assert_stops_everything(up: Up) -> None:
    assert processes_with(up.marker)
    assert up.interrupt() == 0
    assert processes_with(up.marker) == []


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """One `up` for the tests below (each start costs a minute): the deploy system bootstrapped."""
    up = Up(tmp_path_factory.mktemp("up") / "mlops", "--only", "deploy")
    try:
        up.wait_line("running; press Ctrl-C")
        yield up
    finally:
        up.cleanup()


def test_console_has_one_line_per_step_and_no_event_stream(running):
    console = running.console
    assert f"[dev] Dagster UI   ready at http://127.0.0.1:{running.ui}" in console
    assert f"[dev] serving API  ready at http://127.0.0.1:{running.api}/docs" in console
    assert f"[dev] MLflow UI    ready at http://127.0.0.1:{running.mlflow}" in console
    assert "[bootstrap] deploy: materializing" in console
    assert "[bootstrap] deploy: done in " in console
    for noise in ("DEBUG", "STEP_START", "dagster - ", "RUN_SUCCESS", "WARNING"):
        assert noise not in console, noise
    assert "STEP_START" in (running.home / "logs" / "bootstrap-deploy.log").read_text()
    assert_started_cleanly(running)


def test_mlflow_ui_serves_the_platform_store(running):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{running.home / 'mlflow.db'}")
    experiment = client.create_experiment("seen-by-the-ui")
    response = httpx.get(
        f"http://127.0.0.1:{running.mlflow}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": "seen-by-the-ui"},
    )
    assert response.status_code == 200 and response.json()["experiment"]["experiment_id"] == experiment


def test_a_killed_api_is_restarted_alone_and_queued_predictions_complete(running):
    from serving.deploy_queue import DeployQueue
    from tests.deploy.helpers import DEPLOYMENTS

    example = DEPLOYMENTS["paris_airbnb_price"].raw_example
    base = f"http://127.0.0.1:{running.api}"
    served = lambda: {d["name"]: d["served"] for d in httpx.get(f"{base}/api/deployments").json()}.get(
        "paris_airbnb_price"
    )
    wait_for(served, 120, "the bootstrapped deployment is served")
    dagster = {name: pids_running(running.marker, name) for name in ("dagster-webserver", "dagster-daemon")}
    assert all(len(pids) == 1 for pids in dagster.values()), dagster
    [api] = pids_running(running.marker, "uvicorn", "serving.app:create_app")

    before = [httpx.post(f"{base}/api/paris_airbnb_price/predict", json=example) for _ in range(5)]
    assert [r.status_code for r in before] == [202] * 5
    os.kill(api, signal.SIGKILL)
    killed = time.monotonic()
    queue = DeployQueue(running.home / "serving" / "deploy_queue.db")
    while_down = [queue.enqueue("paris_airbnb_price", example) for _ in range(3)]
    queue.close()

    running.wait_line("[dev] serving API exited with -9; restarting in 1 s (restart 1)", timeout=60)
    restarted = wait_for(
        lambda: [p for p in pids_running(running.marker, "uvicorn", "serving.app") if p != api], 15, "a new API process"
    )
    running.wait_line("[dev] serving API  ready again at", timeout=START_TIMEOUT)
    print(f"API answering again {time.monotonic() - killed:.1f} s after the kill (pid {api} -> {restarted})")
    assert httpx.get(f"{base}/health").json()["status"] == "ok"

    ids = [r.json()["prediction_id"] for r in before] + while_down

    def all_complete():
        statuses = [httpx.get(f"{base}/api/predict/{i}").json()["status"] for i in ids]
        assert "ERROR" not in statuses, statuses
        return statuses == ["COMPLETE"] * len(ids)

    wait_for(all_complete, 120, "every queued prediction completes")
    assert {name: pids_running(running.marker, name) for name in dagster} == dagster  # never stopped
    assert "stopping" not in running.console


def test_ctrl_c_stops_everything(running):
    assert_stops_everything(running)


@pytest.mark.parametrize("start", [2, 3])
def test_every_start_from_an_empty_home_succeeds(tmp_path, start):
    """The stores used to be created by the webserver, the daemon and their code servers at once: a coin toss."""
    up = Up(tmp_path / "mlops", "--no-bootstrap")
    try:
        up.wait_line("running; press Ctrl-C")
        assert_started_cleanly(up)
        assert_stops_everything(up)
    finally:
        up.cleanup()


@pytest.mark.parametrize("option", ["--ui-port", "--api-port", "--mlflow-port"])
def test_a_port_in_use_is_named_with_its_option_and_nothing_starts(tmp_path, option):
    home = tmp_path / "mlops"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"--ui-port": free_port(), "--api-port": free_port(), "--mlflow-port": free_port(), option: port}
        refused_in_one_line(home, ["--no-bootstrap", *[str(x) for pair in ports.items() for x in pair]], port, option)


def refused_in_one_line(home: Path, up_args: list[str], port: int, option: str, env: dict | None = None) -> None:
    """`dev.py up` with `up_args` fails, names `port` and the `option` that changes it in one line, and neither
    leaves a process nor creates `home`: the contract of both profiles' launchers when a port is taken."""
    result = subprocess.run(
        [sys.executable, "dev.py", "up", *up_args],
        cwd=REPO_ROOT,
        env={**os.environ, "MLOPS_HOME": str(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and option in lines[0], lines
    assert processes_with(f"MLOPS_HOME={home}") == [] and not home.exists()


def test_test_command_passes_pytest_options_through():
    result = subprocess.run(
        [
            sys.executable,
            "dev.py",
            "test",
            "-q",
            "-x",
            "tests/resources/test_settings.py",
            "-k",
            "defaults or selected_by_settings",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout and "deselected" in result.stdout  # -k reached pytest
    rejected = subprocess.run(
        [sys.executable, "dev.py", "up", "--bogus"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert rejected.returncode == 2 and "--bogus" in rejected.stderr


def test_installer_output_is_shown_only_when_the_step_fails(capfd):
    import dev

    warning = "WARNING: Location 'file:///wheels' is ignored"
    assert dev.quiet([sys.executable, "-c", f"print({warning!r})"])
    assert warning not in capfd.readouterr().out
    assert not dev.quiet([sys.executable, "-c", f"print({warning!r}); raise SystemExit(3)"])
    out = capfd.readouterr().out
    assert warning in out and "exited with 3" in out
