"""The platform as a user runs it: `python3 dev.py up --no-bootstrap` (Dagster webserver, daemon with the default
run launcher, serving API) on a temporary home and free ports, for the live tests and scripts/bench_live.py."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import REPO_ROOT, free_port, standalone_environment, wait_for, wait_for_http

VENV_BIN = Path(sys.executable).parent
LOCATION = "mlops_platform"
REPOSITORY = "__repository__"  # the name Dagster gives the repository of a @definitions function


@dataclass
class LivePlatform:
    home: Path
    env: dict[str, str]
    ui: str
    api: str
    ui_port: int
    log: Path

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster_home"

    def instance(self):
        """A handle on the instance the daemon and the webserver use (SQLite storage in dagster_home)."""
        import dagster as dg

        # dagster.yaml names its storage folder by $DAGSTER_HOME, read once while the instance is built.
        previous = os.environ.get("DAGSTER_HOME")
        os.environ["DAGSTER_HOME"] = str(self.dagster_home)
        try:
            return dg.DagsterInstance.from_config(str(self.dagster_home))
        finally:
            if previous is None:
                del os.environ["DAGSTER_HOME"]
            else:
                os.environ["DAGSTER_HOME"] = previous

    def launch(self, job: str, run_config: dict | None = None, tags: dict | None = None) -> str:
        """Launch a job through the webserver's GraphQL API, as the UI's "Launch run" does; returns the run id."""
        from dagster_graphql import DagsterGraphQLClient

        client = DagsterGraphQLClient("127.0.0.1", port_number=self.ui_port, timeout=60)
        return client.submit_job_execution(
            job, repository_location_name=LOCATION, repository_name=REPOSITORY, run_config=run_config or {}, tags=tags
        )


def wait_until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.5):
    """tests.support.wait_for with the argument order of the live helpers (they poll servers: every 0.5 s)."""
    return wait_for(condition, what, timeout=timeout, interval=interval)


def prepare_instance(dagster_home: Path, env: dict[str, str]) -> None:
    """Create and migrate the instance storage once, before any process that shares it starts.

    The webserver, the daemon and their code servers otherwise create the SQLite storage at the same moment
    (a known first-start race of `dev.py up`)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    subprocess.run(
        [str(VENV_BIN / "dagster"), "instance", "migrate"],
        cwd=REPO_ROOT,
        check=True,
        env={**env, "DAGSTER_HOME": str(dagster_home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def _processes_of(home: Path) -> list[int]:
    """Processes (ours: started with MLOPS_HOME=home, a fresh temporary folder) that still run."""
    marker = f"MLOPS_HOME={home}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker in Path(f"/proc/{name}/environ").read_bytes().split(b"\0"):
                found.append(int(name))
    return found


@contextlib.contextmanager
def live_platform(
    home: Path, data: Path | None, extra_env: dict[str, str] | None = None, timeout: float = 300
) -> Iterator[LivePlatform]:
    """`python3 dev.py up --no-bootstrap` on `home` with free ports; stops everything it started on exit."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **standalone_environment(home, data), **(extra_env or {})}
    env.pop("DAGSTER_HOME", None)
    prepare_instance(home / "dagster_home", env)
    ui_port, api_port, mlflow_port = free_port(), free_port(), free_port()
    log = home / "dev-up.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "dev.py",
                "up",
                "--no-bootstrap",
                "--ui-port",
                str(ui_port),
                "--api-port",
                str(api_port),
                "--mlflow-port",
                str(mlflow_port),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    platform = LivePlatform(home, env, f"http://127.0.0.1:{ui_port}", f"http://127.0.0.1:{api_port}", ui_port, log)
    try:
        wait_for_http(f"{platform.api}/health", timeout=timeout, process=process)
        wait_for_http(f"{platform.ui}/server_info", timeout=timeout, process=process)
        yield platform
    finally:
        stop_platform(process, home)


def stop_platform(process: subprocess.Popen, home: Path) -> None:
    # dev.py stops its children's process groups on SIGTERM; whatever is left after that (dev.py itself killed,
    # a run worker outside those groups) is found by the temporary home in its environment.
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=40)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    for pid in _processes_of(home):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def run_status(instance, run_id: str):
    return instance.get_run_by_id(run_id).status


def wait_for_run(instance, run_id: str, timeout: float = 900, follow_retries: bool = False):
    """The finished run (any end status): a busy 2-core machine can take minutes to start a run worker. With
    `follow_retries`, a run that failed and was retried by the instance (run_retries) is followed to its retry."""
    import dagster as dg

    run = wait_until(
        lambda: (run := instance.get_run_by_id(run_id)).is_finished and run, timeout, f"run {run_id} finished"
    )
    if follow_retries and run.status == dg.DagsterRunStatus.FAILURE:
        try:
            will_retry = wait_until(
                lambda: instance.get_run_by_id(run_id).tags.get("dagster/will_retry"),
                60,
                f"run {run_id} retry decision",
            )
        except TimeoutError:  # run retries off: the failure is final
            return run
        if will_retry == "true":
            retry = wait_until(
                lambda: instance.get_runs(dg.RunsFilter(tags={"dagster/parent_run_id": run_id})),
                120,
                f"the retry of run {run_id}",
            )[0]
            return wait_for_run(instance, retry.run_id, timeout, follow_retries)
    return run


def ensure_scones_champion(platform: LivePlatform) -> None:
    """Train the scones classifier through the webserver unless a training run already succeeded."""
    import dagster as dg

    instance = platform.instance()
    done = instance.get_run_records(
        dg.RunsFilter(job_name="scones_training", statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
    )
    if not done:
        run = wait_for_run(instance, platform.launch("scones_training"), follow_retries=True)
        assert run.status == dg.DagsterRunStatus.SUCCESS, failure_summary(instance, run.run_id)


def failure_summary(instance, run_id: str) -> str:
    """Why a run failed, from its event log: what a failing live test should say before its home is gone."""
    import dagster as dg

    wanted = {dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.ENGINE_EVENT}
    lines = [
        f"{record.dagster_event.event_type_value} {record.step_key or ''} {record.message}"
        for record in instance.all_logs(run_id)
        if record.dagster_event and record.dagster_event.event_type in wanted
    ]
    run = instance.get_run_by_id(run_id)
    return f"run {run_id} ({run.job_name}) ended {run.status}:\n" + "\n".join(lines[-12:])


def captured_keys(instance) -> set[str]:
    """Object keys the scones workflow has captured, from the latest 10,000 materializations of its capture table
    (Dagster's limit per query; reading the DuckDB file itself would take its lock from the run workers)."""
    import dagster as dg

    from mlops_assets.scones.inference import CAPTURES_KEY

    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=CAPTURES_KEY), limit=10_000).records
    keys: set[str] = set()
    for record in records:
        value = record.asset_materialization.metadata.get("s3_keys")
        keys.update(value.value.split(", ") if value else [])
    return keys


def scones_runs_in_flight(instance) -> bool:
    import dagster as dg

    return bool(
        instance.get_run_records(
            dg.RunsFilter(
                job_name="scones_inference",
                statuses=[
                    dg.DagsterRunStatus.QUEUED,
                    dg.DagsterRunStatus.NOT_STARTED,
                    dg.DagsterRunStatus.STARTING,
                    dg.DagsterRunStatus.STARTED,
                ],
            ),
            limit=1,
        )
    )


def capture_rows(duckdb_path: Path, key_like: str) -> list[tuple]:
    """(s3_key, etag, captured_at, verdict, dagster_run_id) of the capture rows whose key is LIKE `key_like`."""
    import duckdb

    from mlops_assets.scones.constants import CAPTURE_TABLE

    def read():
        try:
            with duckdb.connect(str(duckdb_path), read_only=True) as connection:
                return connection.execute(
                    f"SELECT s3_key, etag, captured_at, verdict, dagster_run_id "
                    f"FROM {CAPTURE_TABLE} WHERE s3_key LIKE ?",
                    [key_like],
                ).fetchall()
        except duckdb.IOException:  # a run worker holds the write lock for a moment
            return None

    return wait_until(lambda: (rows := read()) is not None and [rows], 60, "the warehouse readable")[0]
