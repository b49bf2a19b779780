"""Create and migrate the shared stores once, before any process that uses them starts.

`python -m mlops_assets.prepare` (run by `python3 dev.py up` before the webserver, the daemon, the API and the
MLflow UI) opens Dagster's instance in DAGSTER_HOME and MLflow's tracking database. Both create their SQLite
schema on first use with no lock between processes: started together on an empty home, two of them would create
the same tables at once (`table job_ticks already exists`, or two rows in `alembic_version`, a corrupted store).

Prints one JSON line with what the MLflow UI must serve (tracking URI, artifact root, UI URL).
"""

from __future__ import annotations

import contextlib
import json
import sys

from resources.settings import PlatformSettings


def prepare_dagster_instance() -> None:
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        # Touching each storage creates its schema; upgrade() migrates a home made by an older Dagster.
        instance.get_runs(limit=1)
        instance.all_instigator_state()
        instance.fetch_run_status_changes(dg.DagsterEventType.RUN_START, limit=1)
        instance.upgrade()


def prepare_mlflow_store(settings: PlatformSettings) -> None:
    if settings.mlflow_tracking_uri.split(":", 1)[0].split("+", 1)[0] not in {"sqlite", "postgresql", "mysql", "mssql"}:
        return  # a tracking server or a file store: nothing to migrate from here
    from mlflow.tracking import MlflowClient

    # The client's SQL store creates and migrates its tables when it is built; the registry shares the file.
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)


def main() -> int:
    settings = PlatformSettings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON line below
        prepare_dagster_instance()
        prepare_mlflow_store(settings)
    print(
        json.dumps(
            {
                "tracking_uri": settings.mlflow_tracking_uri,
                "artifact_root": settings.mlflow_artifact_root,
                "ui_url": settings.mlflow_ui_url,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
