#!/usr/bin/env python3
"""The two README commands, standard library only so they run on a fresh Python 3.11:

    python3 dev.py up      install into .venv, start Dagster (UI + daemon) and the serving API, materialize
    python3 dev.py test    install into .venv (with the dev extra) and run the test suite

Ctrl-C (or SIGTERM) stops every process `up` started.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
PYTHON = BIN / "python"
STAMP = VENV / ".mlops-installed"


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def ensure_environment() -> None:
    """Create .venv and install the project (with the dev extra) unless pyproject.toml is unchanged."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        say("creating .venv")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    started = time.monotonic()
    say("installing the platform into .venv (uv, about 30 s the first time)")
    uv = BIN / "uv" if (BIN / "uv").exists() else shutil.which("uv")
    if uv is None:
        ensure_pip()
        if subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "uv"]).returncode == 0:
            uv = BIN / "uv"
    install = [str(uv), "pip", "install", "--quiet", "--python", str(PYTHON), "-e", f"{ROOT}[dev]"]
    if uv is None or subprocess.run(install, cwd=ROOT).returncode != 0:
        say("uv unavailable; installing with pip (a few minutes)")
        ensure_pip()
        subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]"], cwd=ROOT, check=True)
    STAMP.write_text(wanted)
    say(f"installed in {time.monotonic() - started:.0f} s")


def ensure_pip() -> None:
    # Environments made by uv have no pip; the standard library can add it offline.
    if subprocess.run([str(PYTHON), "-m", "pip", "--version"], capture_output=True).returncode != 0:
        subprocess.run([str(PYTHON), "-m", "ensurepip", "--upgrade"], check=True, capture_output=True)


def platform_env() -> dict[str, str]:
    env = dict(os.environ)
    home = Path(env.setdefault("MLOPS_HOME", str(ROOT / ".mlops"))).resolve()
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env["DAGSTER_HOME"] = str(dagster_home)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("GIT_PYTHON_REFRESH", "quiet")
    return env


def _child_signals() -> None:
    # A shell without job control starts background commands with SIGINT ignored, and children inherit that;
    # reset both so that our SIGTERM (and a terminal's Ctrl-C) really stops dagster and uvicorn.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def signal_groups(groups: list[int], sig: int) -> None:
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc"):
        return True  # cannot tell members from a zombie leader here: let the deadline decide
    # A zombie leader keeps the group "alive" until reaped; only members that still run count.
    return any(_runs_in_group(pid, group) for pid in _pids())


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()] if os.path.isdir("/proc") else []


def _runs_in_group(pid: int, group: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z" and int(fields[2]) == group


def wait_for(url: str, timeout: float, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise SystemExit(f"[dev] {process.args[0]} exited with {process.returncode}; see .mlops/logs")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.5)
    raise SystemExit(f"[dev] {url} did not answer within {timeout:.0f} s")


def up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    ensure_environment()
    env = platform_env()
    logs = Path(env["MLOPS_HOME"]) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    commands = {
        "dagster-webserver": [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(args.ui_port),
                              "-w", str(ROOT / "workspace.yaml")],
        "dagster-daemon": [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
        "serving": [str(PYTHON), "-m", "uvicorn", "serving.app:create_app", "--factory", "--host", "127.0.0.1",
                    "--port", str(args.api_port)],
    }
    processes: list[subprocess.Popen] = []

    def stop(*_: object) -> None:
        say("stopping")
        # Each child leads its own process group; Dagster's code servers and worker processes stay in that
        # group even after the leader exits, so the group (not the leader) is what must be gone.
        groups = [process.pid for process in processes]
        signal_groups(groups, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(group_alive(g) for g in groups):
            for process in processes:
                process.poll()  # reap exited leaders so their group can empty
            time.sleep(0.2)
        signal_groups([g for g in groups if group_alive(g)], signal.SIGKILL)
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        raise SystemExit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, command in commands.items():
        log = open(logs / f"{name}.log", "ab")
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True, preexec_fn=_child_signals))
    say(f"logs in {logs}")
    wait_for(f"http://127.0.0.1:{args.api_port}/health", 180, processes)
    say(f"serving API  http://127.0.0.1:{args.api_port}/docs")
    wait_for(f"http://127.0.0.1:{args.ui_port}/server_info", 300, processes)
    say(f"Dagster UI   http://127.0.0.1:{args.ui_port}  (ready after {time.monotonic() - started:.0f} s)")
    if not args.no_bootstrap:
        # Runs in its own process group too, so Ctrl-C during the first materialization stops it as well.
        bootstrap = subprocess.Popen([str(PYTHON), "-m", "mlops_assets.bootstrap", *(["--force"] if args.force else [])],
                                     cwd=ROOT, env=env, start_new_session=True, preexec_fn=_child_signals)
        processes.append(bootstrap)
        code = bootstrap.wait()
        processes.remove(bootstrap)
        say(("materialized" if code == 0 else f"bootstrap exited with {code}; see its output above") +
            f" after {time.monotonic() - started:.0f} s")
    say("running; press Ctrl-C to stop everything")
    while True:
        for process in processes:
            if process.poll() is not None:
                say(f"{process.args[0]} exited with {process.returncode}; stopping the rest")
                stop()
        time.sleep(1)


def test(args: argparse.Namespace) -> int:
    ensure_environment()
    env = dict(os.environ)
    env.setdefault("GIT_PYTHON_REFRESH", "quiet")
    return subprocess.call([str(PYTHON), "-m", "pytest", *args.pytest_args], cwd=ROOT, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="install, start Dagster and the serving API, materialize")
    up_parser.add_argument("--ui-port", type=int, default=3000)
    up_parser.add_argument("--api-port", type=int, default=8000)
    up_parser.add_argument("--no-bootstrap", action="store_true", help="start without materializing anything")
    up_parser.add_argument("--force", action="store_true", help="materialize again even if done before")
    up_parser.set_defaults(run=up)
    test_parser = commands.add_parser("test", help="install and run the tests (extra arguments go to pytest)")
    test_parser.set_defaults(run=test)
    # Unknown arguments (e.g. -x, -k name, tests/titanic) belong to pytest; `up` accepts none.
    args, extra = parser.parse_known_args()
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pytest_args = extra
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
