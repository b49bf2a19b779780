#!/usr/bin/env python3
"""The two README commands, standard library only so they run on a fresh Python 3.11:

    python3 dev.py up      install into .venv, start Dagster (UI + daemon), the serving API and the MLflow UI,
                           materialize
    python3 dev.py up --profile team
                           the same on PostgreSQL, Redis + Celery workers, S3 (moto_server), an MLflow tracking
                           server and two API processes (docs/scale-out.md)
    python3 dev.py test    install into .venv (with the dev extra) and run the test suite

`up` restarts a server that dies; Ctrl-C (or SIGTERM) stops every process it started.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from devtools import team_up
from devtools.supervise import Child, GaveUp, Stop, Supervisor, port_in_use, stop_on_signals
from devtools.team import api_command

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
PYTHON = BIN / "python"
STAMP = VENV / ".mlops-installed"
# Byte-code compiled at install time: uv leaves it out, and a Python run with PYTHONDONTWRITEBYTECODE (or on a
# read-only .venv) then compiles every imported module from source in every process. Every run worker, code server
# and `dagster` command imports Dagster, pandas, scikit-learn and MLflow: compiling them was about half of a run
# worker's start-up. (uv's --compile-bytecode covers only the packages an install changes.)
COMPILE = ["-m", "compileall", "-q", "-j", "0"]


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def ensure_environment() -> None:
    """Create .venv and install the project (with the dev extra) unless pyproject.toml is unchanged.

    The installers' output (registry warnings and the like) is shown only when a step fails."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + " ".join(COMPILE).encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        say("creating .venv")
        quiet([sys.executable, "-m", "venv", str(VENV)], check=True)
    started = time.monotonic()
    say("installing the platform into .venv (uv, then byte-code compilation; once)")
    uv = BIN / "uv" if (BIN / "uv").exists() else shutil.which("uv")
    if uv is None:
        ensure_pip()
        if quiet([str(PYTHON), "-m", "pip", "install", "--quiet", "uv"]):
            uv = BIN / "uv"
    install = [str(uv), "pip", "install", "--quiet", "--python", str(PYTHON), "-e", f"{ROOT}[dev]"]
    if uv is None or not quiet(install):
        say("uv unavailable or failed; installing with pip (a few minutes)")
        ensure_pip()
        quiet([str(PYTHON), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]"], check=True)
    quiet([str(PYTHON), *COMPILE, *map(str, VENV.glob("lib/python*/site-packages"))], check=True)
    STAMP.write_text(wanted)
    say(f"installed in {time.monotonic() - started:.0f} s")


def quiet(command: list[str], check: bool = False) -> bool:
    """Run an install step with its output captured; print that output only if the step fails."""
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        sys.stdout.write(result.stdout.decode(errors="replace"))
        say(f"{Path(command[0]).name} {' '.join(command[1:3])} ... exited with {result.returncode}")
        if check:
            raise SystemExit(result.returncode)
    return result.returncode == 0


def ensure_pip() -> None:
    # Environments made by uv have no pip; the standard library can add it offline.
    if subprocess.run([str(PYTHON), "-m", "pip", "--version"], capture_output=True).returncode != 0:
        quiet([str(PYTHON), "-m", "ensurepip", "--upgrade"], check=True)


def platform_env(mlflow_port: int = 5000, api_port: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    home = Path(env.setdefault("MLOPS_HOME", str(ROOT / ".mlops"))).resolve()
    env["MLOPS_HOME"] = str(home)
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env["DAGSTER_HOME"] = str(dagster_home)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("GIT_PYTHON_REFRESH", "quiet")
    if not env.get("MLOPS_MLFLOW_UI_URL"):  # set explicitly, e.g. behind a proxy: the links keep that address
        env["MLOPS_MLFLOW_UI_URL"] = f"http://127.0.0.1:{mlflow_port}"
    if api_port is not None and not env.get("MLOPS_SCONES_ENDPOINT_URL"):
        # Inference runs post their images to the API, which keeps the champion loaded (see docs/scones.md).
        env["MLOPS_SCONES_ENDPOINT_URL"] = f"http://127.0.0.1:{api_port}"
    return env


def shown(path: Path) -> str:
    """A path as the user would type it from the project folder."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


PORTS = (
    ("ui_port", "--ui-port", "Dagster UI"),
    ("api_port", "--api-port", "serving API"),
    ("mlflow_port", "--mlflow-port", "MLflow UI"),
)


def up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    ensure_environment()
    team = team_up.ports(args, dict(os.environ)) if args.profile == "team" else None
    checks = [(getattr(args, attribute), option, what) for attribute, option, what in PORTS]
    for port, option, what in checks + (team_up.port_checks(team) if team else []):
        if port_in_use(port):
            say(f"port {port} ({what}) is already in use; stop what holds it or choose another with {option}")
            return 1
    env = platform_env(args.mlflow_port, args.api_port)
    postgres = None
    if team:
        try:
            postgres, env = team_up.prepare(ROOT, Path(env["MLOPS_HOME"]), env, team, args.celery_workers)
        except RuntimeError as problem:  # PostgreSQL's binaries missing
            say(str(problem))
            return 1
    logs = Path(env["MLOPS_HOME"]) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    say(f"logs in {shown(logs)}")
    supervisor = Supervisor(ROOT, env, say)
    stop_on_signals()
    try:
        if team:
            team_up.start_backing_services(supervisor, postgres, team, logs, say)
            supervisor.wait_ready(timeout=args.start_timeout)
        start_servers(args, supervisor, logs, team, postgres)
        say(f"servers ready after {time.monotonic() - started:.0f} s")
        if not args.no_bootstrap:
            bootstrap(args, supervisor, logs)
            say(f"bootstrap finished after {time.monotonic() - started:.0f} s")
        say("running; press Ctrl-C to stop everything")
        supervisor.wait_until(lambda: False)
    except Stop:
        say("stopping")
        return 0
    except GaveUp as problem:
        say(f"{problem}; stopping everything")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop_all()
        if postgres is not None:
            postgres.stop()  # a daemon of its own (pg_ctl), after everything that uses it
    return 0


def start_servers(args: argparse.Namespace, supervisor: Supervisor, logs: Path, team=None, postgres=None) -> None:
    # Dagster and MLflow create their SQLite schemas on first use with no lock between processes: one process
    # creates both before the servers, the daemon and the run workers that share them start.
    with open(logs / "prepare.log", "ab") as log:
        prepare = supervisor.run_once([str(PYTHON), "-m", "mlops_assets.prepare"], stdout=subprocess.PIPE, stderr=log)
        supervisor.wait_until(lambda: prepare.poll() is not None)
        output = prepare.stdout.read().decode()
    if prepare.returncode != 0:
        raise GaveUp(f"creating the Dagster instance and the MLflow store failed; see {shown(logs / 'prepare.log')}")
    stores = json.loads(output.strip().splitlines()[-1])
    say("Dagster instance and MLflow store ready")
    host = "http://127.0.0.1"
    workspace = str(ROOT / "workspace.yaml")
    supervisor.add(
        Child(
            "Dagster UI",
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(args.ui_port), "-w", workspace],
            logs / "dagster-webserver.log",
            url=f"{host}:{args.ui_port}",
            ready_url=f"{host}:{args.ui_port}/server_info",
        )
    )
    supervisor.add(
        Child("Dagster daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace], logs / "dagster-daemon.log")
    )
    api_ports = team.api if team else (args.api_port,)
    for n, port in enumerate(api_ports):
        supervisor.add(
            Child(
                "serving API" + (f" {n + 1}" if len(api_ports) > 1 else ""),
                api_command(PYTHON, port),
                logs / ("serving.log" if n == 0 else f"serving-{n + 1}.log"),
                url=f"{host}:{port}/docs",
                ready_url=f"{host}:{port}/health",
            )
        )
    if team:
        team_up.add_team_servers(supervisor, BIN, postgres, team, logs, args.queue_consumers)
        say(f"{args.celery_workers} Celery workers started (logs celery-N.log), broker redis://127.0.0.1:{team.redis}")
        say(f"{args.queue_consumers} deploy queue consumers started (logs consumer-N.log), queue in PostgreSQL")
    elif stores["tracking_uri"].startswith(("http://", "https://")):
        say(f"MLflow UI    served by the tracking server {stores['tracking_uri']}")
    else:
        supervisor.add(
            Child(
                "MLflow UI",
                [
                    str(BIN / "mlflow"),
                    "server",
                    "--backend-store-uri",
                    stores["tracking_uri"],
                    "--default-artifact-root",
                    stores["artifact_root"],
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(args.mlflow_port),
                    "--workers",
                    "1",
                ],
                logs / "mlflow-ui.log",
                url=stores["ui_url"],
                ready_url=f"{host}:{args.mlflow_port}/health",
                # Its job runner (GenAI evaluations; eight worker processes) serves nothing here.
                env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            )
        )
    supervisor.wait_ready(timeout=args.start_timeout)


def bootstrap(args: argparse.Namespace, supervisor: Supervisor, logs: Path) -> None:
    """First materialization, one console line per system step; Dagster's event stream goes to the logs."""
    command = [
        str(PYTHON),
        "-m",
        "mlops_assets.bootstrap",
        *(["--force"] if args.force else []),
        *(["--only", *args.only] if args.only else []),
    ]
    # Its console lines go to stdout; stderr (import-time warnings and the like) only to the log.
    with open(logs / "bootstrap.log", "ab") as log:
        process = supervisor.run_once(command, stderr=log)
    supervisor.wait_until(lambda: process.poll() is not None)
    if process.returncode != 0:
        say(f"bootstrap exited with {process.returncode}; the servers keep running (see {shown(logs)})")


def test(args: argparse.Namespace) -> int:
    ensure_environment()
    env = dict(os.environ)
    env.setdefault("GIT_PYTHON_REFRESH", "quiet")
    return subprocess.call(
        [str(PYTHON), "-m", "pytest", *workers(args.pytest_args), *args.pytest_args], cwd=ROOT, env=env
    )


def workers(pytest_args: list[str]) -> list[str]:
    """The whole suite runs on two pytest-xdist workers: much of its time is spent waiting on servers and daemons
    that it starts, so two workers finish it far sooner even on two cores. Tests sharing an expensive fixture stay
    on one worker (tests/conftest.py groups them). A selection of tests, or `-n`/`-p` given by hand, runs as asked;
    MLOPS_TEST_WORKERS=1 runs everything in one process."""
    chosen = any(a.startswith(("-n", "--numprocesses", "-p", "--dist")) for a in pytest_args)
    selection = any(not a.startswith("-") for a in pytest_args)
    count = os.environ.get("MLOPS_TEST_WORKERS", "2")
    if chosen or selection or count in ("0", "1"):
        return []
    return ["--numprocesses", count, "--dist", "loadgroup"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="install, start Dagster, the serving API and the MLflow UI, materialize")
    up_parser.add_argument("--ui-port", type=int, default=3000, help="Dagster UI port (default 3000)")
    up_parser.add_argument("--api-port", type=int, default=8000, help="serving API port (default 8000)")
    up_parser.add_argument("--mlflow-port", type=int, default=5000, help="MLflow UI port (default 5000)")
    up_parser.add_argument("--no-bootstrap", action="store_true", help="start without materializing anything")
    up_parser.add_argument("--only", nargs="+", metavar="SYSTEM", help="materialize only these systems")
    up_parser.add_argument("--force", action="store_true", help="materialize again even if done before")
    up_parser.add_argument("--start-timeout", type=float, default=600, help=argparse.SUPPRESS)
    up_parser.add_argument(
        "--profile",
        choices=("embedded", "team"),
        default=os.environ.get("MLOPS_PROFILE") or "embedded",
        help="embedded (default; MLOPS_PROFILE) or team: PostgreSQL, Celery, S3, MLflow server (docs/scale-out.md)",
    )
    team_up.add_options(up_parser)
    up_parser.set_defaults(run=up)
    test_parser = commands.add_parser("test", help="install and run the tests (extra arguments go to pytest)")
    test_parser.set_defaults(run=test)
    # Unknown arguments (e.g. -x, -k name, tests/titanic) belong to pytest; `up` accepts none.
    args, extra = parser.parse_known_args()
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pytest_args = extra
    if args.command == "up" and args.profile not in ("embedded", "team"):  # from MLOPS_PROFILE, unchecked by argparse
        parser.error(f"MLOPS_PROFILE must be 'embedded' or 'team', got {args.profile!r}")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
