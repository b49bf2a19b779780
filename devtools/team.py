"""Local servers of the team profile (docs/scale-out.md), standard library only so that `dev.py` can start them
on a bare Python before `.venv` exists, and tests can start the same ones.

- `LocalPostgres`: a PostgreSQL cluster in a folder (Debian's binaries, `initdb` once, `pg_ctl` start/stop),
  listening on 127.0.0.1 and a Unix socket inside its folder only. PostgreSQL refuses to run as root: when we
  are root, the cluster folder is handed to the `postgres` user the Debian package creates and the server runs
  as that user.
- `dagster_postgres_env`: the variables `dagster.team.yaml` reads.
- `TeamPorts`, `team_env` and the `*_command` functions: what `python3 dev.py up --profile team` starts beside
  the cluster (Redis, moto_server, the MLflow tracking server, Celery workers, API processes) and the settings it
  hands every child, so that tests and benchmarks start exactly the same processes.
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


# The S3 credentials moto_server accepts; a real endpoint takes the caller's AWS variables instead.
MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
DATABASES = ("dagster", "mlflow", "deploy_queue")  # one cluster, one database per store


@dataclass
class TeamPorts:
    """Every port of a local team profile, all on 127.0.0.1. `s3` is None when a real endpoint is given."""

    ui: int = 3000
    mlflow: int = 5000
    api: tuple[int, ...] = (8000, 8001)
    postgres: int = 5432
    redis: int = 6379
    s3: int | None = 5555


def team_env(env: dict[str, str], ports: TeamPorts, postgres: LocalPostgres, celery_workers: int = 2) -> dict[str, str]:
    """The settings every child of the team profile gets (docs/scale-out.md#launcher); the caller's own values of
    the S3 endpoint, bucket and credentials are kept (a real S3), everything local is on 127.0.0.1."""
    env = dict(env)
    if ports.s3 is not None:
        env["MLOPS_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{ports.s3}"
        for key, value in MOTO_CREDENTIALS.items():
            env.setdefault(key, value)
    broker = f"redis://127.0.0.1:{ports.redis}/0"
    env.update(
        {
            "MLOPS_PROFILE": "team",
            "MLOPS_OBJECT_STORE": "s3",
            "MLOPS_TABLE_FORMAT": "delta",
            "MLOPS_EXECUTOR": "celery",
            "MLOPS_CELERY_BROKER": broker,
            "MLOPS_CELERY_BACKEND": broker,
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ports.mlflow}",
            "MLOPS_MLFLOW_UI_URL": f"http://127.0.0.1:{ports.mlflow}",
            "MLOPS_DAGSTER_UI_URL": f"http://127.0.0.1:{ports.ui}",
            "MLOPS_DEPLOY_QUEUE_URL": postgres.url("deploy_queue"),
            # The API processes only enqueue and answer; the queue consumers predict (serving/deploy_consumer.py).
            "MLOPS_DEPLOY_WORKER": "0",
            "MLOPS_CELERY_WORKERS": str(celery_workers),
            **dagster_postgres_env(postgres, "dagster"),
        }
    )
    env.setdefault("MLOPS_S3_BUCKET", "mlops-platform")
    return env


def redis_command(port: int, folder: Path) -> list[str]:
    """A broker that keeps nothing on disk: queued step tasks die with it (a run waiting on one fails by its
    own monitoring), and no dump file is left under the project."""
    redis = shutil.which("redis-server") or "/usr/bin/redis-server"
    return [redis, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(folder)]


def moto_command(bin_dir: Path, port: int) -> list[str]:
    return [str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]


def mlflow_server_command(bin_dir: Path, backend: str, artifacts: str, port: int) -> list[str]:
    """The tracking server: registry and runs in PostgreSQL, artifacts proxied to S3 (clients need only its URL)."""
    return [
        str(bin_dir / "mlflow"),
        "server",
        "--backend-store-uri",
        backend,
        "--artifacts-destination",
        artifacts,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def celery_config_file(folder: Path, broker: str, backend: str) -> Path:
    """The executor block the workers read (`dagster-celery worker start -y`): the same broker as the runs."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "celery.yaml"
    path.write_text(f"execution:\n  config:\n    broker: '{broker}'\n    backend: '{backend}'\n")
    return path


def celery_worker_command(bin_dir: Path, name: str, config: Path) -> list[str]:
    """One Celery worker through dagster-celery's CLI. Prefork pool with one child: each step runs in a child
    process of its own worker, so a step that kills its process (OOM, kill -9) fails its task with
    WorkerLostError and the run fails cleanly instead of waiting for a result that never comes."""
    return [
        str(bin_dir / "dagster-celery"),
        "worker",
        "start",
        "-A",
        "dagster_celery.app",
        "-y",
        str(config),
        "-n",
        name,
        "--",
        "--concurrency",
        "1",
        "--without-gossip",
        "--without-mingle",
    ]


def consumer_command(python: Path) -> list[str]:
    """A consumer of the shared deploy queue (PostgreSQL), predicting apart from the API processes."""
    return [str(python), "-m", "serving.deploy_consumer"]


def api_command(python: Path, port: int) -> list[str]:
    return [
        str(python),
        "-m",
        "uvicorn",
        "serving.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
