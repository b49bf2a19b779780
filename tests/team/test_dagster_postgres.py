"""Dagster's instance on a real PostgreSQL: dagster.team.yaml, and dagster.yaml's commented block uncommented.

The Dagster CLI materializes a small job and starts its schedule in processes of their own; the test then reads
the run, its materialization and the schedule's state back through a fresh instance and straight from the
database, so nothing can have gone to SQLite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from devtools.team import dagster_postgres_env
from tests.support import REPO_ROOT

CLI = Path(sys.executable).parent / "dagster"


def commented_block_instance() -> str:
    """dagster.yaml with its SQLite storage block replaced by the commented Postgres block, uncommented."""
    text = (REPO_ROOT / "dagster.yaml").read_text()
    block = re.search(r"^# storage:\n(?:#  .*\n)+", text, re.MULTILINE)
    assert block, "dagster.yaml lost its commented Postgres block"
    postgres = "\n".join(line[2:] for line in block.group(0).splitlines()) + "\n"
    sqlite = re.search(r"^storage:\n(?:  .*\n)+", text, re.MULTILINE)
    return text[: sqlite.start()] + postgres + text[sqlite.end() :]


INSTANCES = {
    "team_file": lambda: (REPO_ROOT / "dagster.team.yaml").read_text(),
    "commented_block": commented_block_instance,
}


def cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(CLI), *args, "-m", "tests.team.tiny_defs"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.mark.parametrize("variant", sorted(INSTANCES))
def test_materialization_and_schedule_state_live_in_postgres(variant, postgres, tmp_path, monkeypatch):
    import psycopg2
    from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType

    database = f"dagster_{variant}"
    postgres.create_database(database)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCES[variant]())
    env = {**os.environ, "DAGSTER_HOME": str(home), **dagster_postgres_env(postgres, database)}

    cli("job", "execute", "-j", "tiny_job", env=env)
    cli("schedule", "start", "tiny_schedule", env=env)

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert [
            type(s).__name__ for s in (instance.run_storage, instance.event_log_storage, instance.schedule_storage)
        ] == ["PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"]
        (run,) = instance.get_runs()
        assert run.job_name == "tiny_job" and run.status == dg.DagsterRunStatus.SUCCESS
        event = instance.get_latest_materialization_event(dg.AssetKey("total"))
        assert event.run_id == run.run_id
        metadata = event.asset_materialization.metadata
        assert metadata["total"].value == 45 and metadata["pid"].value != os.getpid()
        states = {s.name: s.status for s in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)}
        assert states == {"tiny_schedule": InstigatorStatus.RUNNING}

    with psycopg2.connect(host="127.0.0.1", port=postgres.port, user=postgres.user, dbname=database) as conn:
        with conn.cursor() as cursor:
            cursor.execute("SELECT run_id, status FROM runs")
            assert cursor.fetchall() == [(run.run_id, "SUCCESS")]
            cursor.execute(
                "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
                (run.run_id, "ASSET_MATERIALIZATION"),
            )
            assert cursor.fetchone() == (2,)  # numbers and total
            cursor.execute("SELECT instigator_type, status FROM instigators")
            assert cursor.fetchall() == [("SCHEDULE", "RUNNING")]
    assert not list(home.rglob("*.db"))  # no SQLite storage beside it
