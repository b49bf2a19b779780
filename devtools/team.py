"""Local servers of the team profile (docs/scale-out.md), standard library only so that `dev.py` can start them
on a bare Python before `.venv` exists, and tests can start the same ones.

- `LocalPostgres`: a PostgreSQL cluster in a folder (Debian's binaries, `initdb` once, `pg_ctl` start/stop),
  listening on 127.0.0.1 and a Unix socket inside its folder only. PostgreSQL refuses to run as root: when we
  are root, the cluster folder is handed to the `postgres` user the Debian package creates and the server runs
  as that user.
- `dagster_postgres_env`: the variables `dagster.team.yaml` reads.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

POSTGRES_USER = "postgres"  # the system account of Debian's package, used only when we run as root


def postgres_bin_dir() -> Path | None:
    """The newest Debian PostgreSQL bin folder, else the folder of a `pg_ctl` on PATH; None when not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).resolve().parent if on_path else None


@dataclass
class LocalPostgres:
    """One cluster in `folder` (created on first start), superuser `user` without password, bound to 127.0.0.1."""

    folder: Path
    port: int
    user: str = "mlops"
    bin_dir: Path | None = None

    def __post_init__(self) -> None:
        self.folder = Path(self.folder).resolve()
        self.bin_dir = self.bin_dir or postgres_bin_dir()
        if self.bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (Debian's binaries)")

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_file(self) -> Path:
        return self.folder / "postgres.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        owner = self._owner()
        done = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]], capture_output=True, text=True, user=owner, cwd=self.folder
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}")
        return done

    @staticmethod
    def _owner() -> str | None:
        return POSTGRES_USER if os.geteuid() == 0 else None

    def _prepare_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        owner = self._owner()
        if owner is None:
            return
        account = pwd.getpwnam(owner)
        os.chown(self.folder, account.pw_uid, account.pw_gid)  # the server writes its log and socket here
        # The server runs as `postgres`: every folder above the cluster must let it through.
        for parent in self.folder.parents:
            if not os.stat(parent).st_mode & 0o001:
                raise RuntimeError(f"{parent} is not searchable by the {owner} user; put the cluster elsewhere")

    def init(self) -> bool:
        """Create the cluster unless it exists; returns True when created."""
        self._prepare_folder()
        if (self.data_dir / "PG_VERSION").exists():
            return False
        self._run("initdb", "-D", str(self.data_dir), "-U", self.user, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        return True

    def start(self) -> None:
        """Start the server and wait until it accepts connections (`pg_ctl -w`)."""
        self.init()
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder}"
        self._run(
            "pg_ctl", "start", "-w", "-t", "120", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options
        )

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir))

    def running(self) -> bool:
        status = subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.data_dir)], capture_output=True, user=self._owner()
        )
        return status.returncode == 0

    def create_database(self, name: str) -> bool:
        """Create database `name` unless it exists; returns True when created."""
        listed = self._run(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{name}'",
        )
        if listed.stdout.strip() == "1":
            return False
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name)
        return True

    def url(self, database: str, scheme: str = "postgresql+psycopg2") -> str:
        return f"{scheme}://{self.user}@127.0.0.1:{self.port}/{database}"


def dagster_postgres_env(server: LocalPostgres, database: str) -> dict[str, str]:
    """What `dagster.team.yaml` reads: host, port, user, password (empty with trust auth) and database."""
    return {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(server.port),
        "DAGSTER_PG_USER": server.user,
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": database,
    }
