"""`python3 dev.py up --profile team` as a child process on free ports, for the team tests and scripts/bench_scale.py:
the same launcher a user runs, and the environment it hands its children (to run a bootstrap or a benchmark in)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devtools.team import LocalPostgres, TeamPorts, team_env
from tests.support import REPO_ROOT, free_port, free_ports_in_a_row, wait_for


@dataclass
class TeamPlatform:
    """A running team profile: its home, the children's environment, URLs and the launcher's console so far."""

    process: subprocess.Popen
    home: Path
    env: dict[str, str]
    ui: str
    mlflow: str
    apis: list[str]
    console: list[str]

    def instance(self):
        import dagster as dg

        return dg.DagsterInstance.from_config(self.env["DAGSTER_HOME"])


def processes_of(home: Path) -> dict[int, str]:
    """pid -> command line of every running process started for the platform in `home`: those whose environment
    names it as MLOPS_HOME, and their descendants (Celery renames its processes over their environment)."""
    marked, parents, commands = set(), {}, {}
    marker = f"MLOPS_HOME={home}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            commands[pid] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            parents[pid] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                marked.add(pid)
        except (OSError, IndexError, ValueError):
            continue

    def started_for_home(pid: int) -> bool:
        seen = set()
        while pid > 1 and pid not in seen:
            if pid in marked:
                return True
            seen.add(pid)
            pid = parents.get(pid, 0)
        return False

    return {pid: command for pid, command in commands.items() if command and started_for_home(pid)}


def celery_processes(home: Path) -> dict[int, str]:
    """The Celery workers' processes (the CLI, each worker's main process and its pool child) of `home`. Celery
    renames its processes (`[celeryd: worker1@host:ForkPoolWorker-1]`), the CLI keeps `dagster_celery.app`."""
    return {pid: command for pid, command in processes_of(home).items() if "celery" in command}


@contextlib.contextmanager
def launched(
    home: Path, data: Path, celery_workers: int = 2, api_processes: int = 2, timeout: float = 900
) -> Iterator[TeamPlatform]:
    """Start `dev.py up --profile team --no-bootstrap` with state in `home` (searchable by the postgres user);
    stop it with SIGTERM (Ctrl-C's path) and check that it left no process of its own behind."""
    ports = {name: free_port() for name in ("ui", "api", "mlflow", "postgres", "redis", "s3")}
    ports["api"] = free_ports_in_a_row(max(1, api_processes))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "DAGSTER_", "MLFLOW_", "AWS_"))},
        "MLOPS_HOME": str(home),
        "MLOPS_DATA_DIR": str(data),
        "MLOPS_OFFLINE": "1",
        "MLOPS_SERVING_POLL_SECONDS": "0.5",
        "GIT_PYTHON_REFRESH": "quiet",
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "dev.py", "up", "--profile", "team", "--no-bootstrap"]
    command += ["--celery-workers", str(celery_workers), "--api-processes", str(api_processes)]
    for name, port in ports.items():
        command += [f"--{name}-port", str(port)]
    console: list[str] = []
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    threading.Thread(target=lambda: console.extend(iter(process.stdout.readline, "")), daemon=True).start()
    try:
        wait_for(
            lambda: process.poll() is not None or any("press Ctrl-C" in line for line in console),
            "dev.py up --profile team to start its servers",
            timeout=timeout,
            interval=1,
        )
        assert process.poll() is None, "".join(console)
        team = TeamPorts(
            ui=ports["ui"],
            mlflow=ports["mlflow"],
            api=tuple(ports["api"] + n for n in range(api_processes)),
            postgres=ports["postgres"],
            redis=ports["redis"],
            s3=ports["s3"],
        )
        postgres = LocalPostgres(home / "postgres", team.postgres)
        children = team_env({**env, "DAGSTER_HOME": str(home / "dagster_home")}, team, postgres, celery_workers)
        host = "http://127.0.0.1"
        yield TeamPlatform(
            process,
            home,
            children,
            ui=f"{host}:{team.ui}",
            mlflow=f"{host}:{team.mlflow}",
            apis=[f"{host}:{port}" for port in team.api],
            console=console,
        )
    finally:
        process.send_signal(signal.SIGTERM)  # what Ctrl-C does
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
        left = processes_of(home)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not left, f"processes left after stopping dev.py up --profile team: {left}"
