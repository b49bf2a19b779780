"""`python3 dev.py up --profile team`: the backing services of the team profile, started beside the embedded
profile's servers (standard library only, like dev.py).

Order: PostgreSQL (`pg_ctl`, a daemon of its own, stopped last), Redis and moto_server under the supervisor, the
databases, then dev.py's servers with the team's additions (MLflow tracking server, Celery workers, a second API
process). Every child gets `team_env`; see docs/scale-out.md#launcher.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from devtools.supervise import Child, GaveUp, Supervisor
from devtools.team import (
    DATABASES,
    LocalPostgres,
    TeamPorts,
    celery_config_file,
    celery_worker_command,
    consumer_command,
    mlflow_server_command,
    moto_command,
    redis_command,
    team_env,
)


def add_options(parser: argparse.ArgumentParser) -> None:
    team = parser.add_argument_group("team profile (--profile team)")
    team.add_argument("--postgres-port", type=int, default=5432, help="local PostgreSQL port (default 5432)")
    team.add_argument("--redis-port", type=int, default=6379, help="Redis (Celery broker) port (default 6379)")
    team.add_argument(
        "--s3-port", type=int, default=5555, help="moto_server port, unless MLOPS_S3_ENDPOINT_URL is set (5555)"
    )
    team.add_argument("--api-processes", type=int, default=2, help="serving API processes on consecutive ports (2)")
    team.add_argument("--celery-workers", type=int, default=2, help="Celery worker processes (default 2)")
    team.add_argument("--queue-consumers", type=int, default=2, help="deploy queue consumer processes (default 2)")


def ports(args: argparse.Namespace, env: dict[str, str]) -> TeamPorts:
    real_s3 = bool(env.get("MLOPS_S3_ENDPOINT_URL"))
    return TeamPorts(
        ui=args.ui_port,
        mlflow=args.mlflow_port,
        api=tuple(args.api_port + n for n in range(max(1, args.api_processes))),
        postgres=args.postgres_port,
        redis=args.redis_port,
        s3=None if real_s3 else args.s3_port,
    )


def port_checks(team: TeamPorts) -> list[tuple[int, str, str]]:
    """(port, option, what) of every port the team profile binds beyond the embedded profile's."""
    checks = [(port, "--api-port", f"serving API {n + 1}") for n, port in enumerate(team.api[1:], start=1)]
    checks += [(team.postgres, "--postgres-port", "PostgreSQL"), (team.redis, "--redis-port", "Redis")]
    if team.s3 is not None:
        checks.append((team.s3, "--s3-port", "moto_server (S3)"))
    return checks


def prepare(root: Path, home: Path, env: dict[str, str], team: TeamPorts, workers: int):
    """The cluster object, the children's environment, and dagster.team.yaml as the instance's dagster.yaml."""
    postgres = LocalPostgres(home / "postgres", team.postgres)
    shutil.copyfile(root / "dagster.team.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    return postgres, team_env(env, team, postgres, workers)


def start_backing_services(supervisor: Supervisor, postgres: LocalPostgres, team: TeamPorts, logs: Path, say) -> None:
    try:
        postgres.start()
        for database in DATABASES:
            postgres.create_database(database)
    except RuntimeError as problem:  # initdb or pg_ctl failed, or the folder is out of the server's reach
        raise GaveUp(f"PostgreSQL did not start: {' '.join(str(problem).split())[:300]}") from None
    say(f"PostgreSQL   ready at 127.0.0.1:{team.postgres} (cluster in {postgres.folder.name}/)")
    supervisor.add(
        Child(
            "Redis",
            redis_command(team.redis, logs),
            logs / "redis.log",
            url=f"redis://127.0.0.1:{team.redis}",
            ready_url=f"tcp://127.0.0.1:{team.redis}",
        )
    )
    if team.s3 is not None:
        bin_dir = Path(supervisor.env["PATH"].split(":", 1)[0])
        supervisor.add(
            Child(
                "moto_server",
                moto_command(bin_dir, team.s3),
                logs / "moto.log",
                url=f"http://127.0.0.1:{team.s3}",
                ready_url=f"http://127.0.0.1:{team.s3}/moto-api/",
            )
        )
    else:
        say(f"S3           {supervisor.env['MLOPS_S3_ENDPOINT_URL']} (MLOPS_S3_ENDPOINT_URL)")


def add_team_servers(
    supervisor: Supervisor, bin_dir: Path, postgres: LocalPostgres, team: TeamPorts, logs: Path, consumers: int = 2
):
    """The MLflow tracking server, the Celery workers and the deploy queue's consumers (the API processes are
    added by dev.py)."""
    env = supervisor.env
    bucket = env["MLOPS_S3_BUCKET"]
    prefix = env.get("MLOPS_S3_PREFIX", "").strip("/")
    artifacts = f"s3://{bucket}/{prefix + '/' if prefix else ''}mlflow-artifacts"
    supervisor.add(
        Child(
            "MLflow",
            mlflow_server_command(bin_dir, postgres.url("mlflow"), artifacts, team.mlflow),
            logs / "mlflow-server.log",
            url=f"http://127.0.0.1:{team.mlflow}",
            ready_url=f"http://127.0.0.1:{team.mlflow}/health",
            env={
                "MLFLOW_S3_ENDPOINT_URL": env.get("MLFLOW_S3_ENDPOINT_URL") or env.get("MLOPS_S3_ENDPOINT_URL", ""),
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            },
        )
    )
    config = celery_config_file(Path(env["DAGSTER_HOME"]), env["MLOPS_CELERY_BROKER"], env["MLOPS_CELERY_BACKEND"])
    for n in range(int(env.get("MLOPS_CELERY_WORKERS", "2"))):
        supervisor.add(
            Child(
                f"Celery worker {n + 1}",
                celery_worker_command(bin_dir, f"worker{n + 1}", config),
                logs / f"celery-{n + 1}.log",
            )
        )
    for n in range(consumers):
        supervisor.add(
            Child(f"queue consumer {n + 1}", consumer_command(bin_dir / "python"), logs / f"consumer-{n + 1}.log")
        )
