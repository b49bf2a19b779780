"""Test and benchmark helpers: free ports, waiting for servers, starting and stopping real processes on 127.0.0.1,
platform environments in a temporary folder, percentiles."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports_in_a_row(count: int) -> int:
    """The first of `count` consecutive free ports (the team launcher puts API process n on --api-port + n - 1).
    They are taken below the kernel's ephemeral range so that no other test's `free_port()` can be handed the
    second one between this check and the server binding it; a random start keeps parallel workers apart."""
    import random

    low, _ = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(200):
        first = random.randrange(10_000, low - count)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(first, first + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports between 10000 and {low}")


def wait_for_http(url: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # the server answers, even if not 2xx
        except Exception as exc:  # not up yet
            last_error = exc
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last_error}")


def wait_for(condition, what: str, timeout: float = 60.0, interval: float = 0.01):
    """The first truthy value of `condition()`, polled until `timeout`; a TimeoutError naming `what` after it.

    The timeout is a bound on a hang, not a measurement: a loaded machine only makes the wait longer."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(interval)


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of a process (R, S, T for stopped, Z for a zombie...); None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat[stat.rindex(")") + 2]


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def api_command(port: int, *options: str, app: str = "serving.app:create_app", factory: bool = True) -> list[str]:
    """The command of one uvicorn process serving `app` on 127.0.0.1:`port`, quiet but for warnings."""
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    return [*command, *(["--factory"] if factory else []), "--log-level", "warning", *options]


@contextlib.contextmanager
def uvicorn_server(
    env: dict[str, str],
    app: str = "serving.app:create_app",
    factory: bool = True,
    log_path: Path | None = None,
    startup_timeout: float = 300.0,
) -> Iterator[str]:
    """A real uvicorn process on 127.0.0.1 serving `app`; yields its base URL and stops it afterwards."""
    port = free_port()
    cmd = api_command(port, app=app, factory=factory)
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(cmd, cwd=REPO_ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/health", timeout=startup_timeout, process=process)
        yield base
    finally:
        stop_process(process)
        if log_path:
            log.close()


def wait_until_loaded(base: str, what: str, timeout: float = 120.0) -> None:
    """Wait until the server's /health reports `what` (e.g. 'ChampionWatcher:titanic_modal') as loaded.

    The server answers before any model is loaded; the first load also imports MLflow, scikit-learn and skops,
    so it gets the same budget as the server's start."""
    import json

    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
            loaded = json.loads(response.read())["loaded"]
        if loaded.get(what):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not loaded after {timeout}s: {loaded}")
        time.sleep(0.2)


STATE_VARIABLES = ("MLFLOW_TRACKING_URI", "MLOPS_DUCKDB_PATH", "MLOPS_MLFLOW_ARTIFACT_ROOT", "MLOPS_S3_PREFIX")


def platform_environment(home: Path, data: Path | None) -> dict[str, str]:
    """Settings that put every piece of platform state under `home`, offline, with the real data if given."""
    env = {
        "MLOPS_HOME": str(home),
        "MLOPS_OFFLINE": "1",
        "MLOPS_OBJECT_STORE": "local",
        "GIT_PYTHON_REFRESH": "quiet",
        "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
        "MLOPS_SERVING_POLL_SECONDS": "0.5",
        "MLOPS_SCONES_ENDPOINT_URL": "",
    }
    if data is not None:
        env["MLOPS_DATA_DIR"] = str(data)
    return env


def standalone_environment(home: Path, data: Path | None) -> dict[str, str]:
    """`platform_environment` plus every other state variable set empty (its default under `home`): for
    `os.environ` and subprocesses, so nothing the calling shell exports (a real MLflow server) is written to."""
    return {**dict.fromkeys(STATE_VARIABLES, ""), **platform_environment(home, data)}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100), as every benchmark prints it."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@contextlib.contextmanager
def isolated_environment(env: dict[str, str]) -> Iterator[None]:
    """`env` set and the other state variables unset for the block (for fixtures wider than one test)."""
    import pytest

    with pytest.MonkeyPatch.context() as patch:
        for key in STATE_VARIABLES:
            patch.delenv(key, raising=False)
        for key, value in env.items():
            patch.setenv(key, value)
        yield


STRICT_VARIABLE = "MLOPS_STRICT"


def strict() -> bool:
    """True when a missing prerequisite must fail the run instead of skipping tests (CI sets it)."""
    return os.environ.get(STRICT_VARIABLE, "") not in ("", "0")


def skip_or_fail(reason: str) -> None:
    """Skip the calling test or fixture, or fail it under MLOPS_STRICT=1, where a skip would hide a gap."""
    import pytest

    if strict():
        pytest.fail(f"{reason}; {STRICT_VARIABLE}=1 turns this skip into a failure", pytrace=False)
    pytest.skip(reason)


def require_shared_data() -> Path:
    """The real datasets, or a clean skip of the calling test or fixture when they are absent (a failure under
    MLOPS_STRICT=1)."""
    path = shared_data_dir()
    if path is None:
        skip_or_fail("real datasets not available (set MLOPS_DATA_DIR or place ../shared/data)")
    return path


def shared_data_dir() -> Path | None:
    """The real datasets: MLOPS_DATA_DIR if set, else ../shared/data beside the repository."""
    configured = os.environ.get("MLOPS_DATA_DIR")
    candidate = Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"
    return candidate.resolve() if candidate.is_dir() else None


def run_coroutine(coroutine):
    """`asyncio.run` in a thread of its own: Playwright's sync API keeps a loop running in the main thread."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
