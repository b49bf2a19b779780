import os
import shutil
import tempfile
from pathlib import Path

import pytest

from resources import build_registry
from resources.settings import PlatformSettings


def migrated_mlflow_db() -> Path:
    """An empty MLflow SQLite store whose schema MLflow itself created, made once per MLflow version and user.

    Creating the schema runs MLflow's ~50 migrations (5-15 s); mutation testing runs these tests once per mutant,
    so each module copies this file instead. MLflow still opens the copy as its own store and checks its schema.
    """
    import mlflow

    path = Path(tempfile.gettempdir()) / f"mlops-test-mlflow-{mlflow.__version__}-{os.getuid()}.db"
    if not path.exists():
        home = Path(tempfile.mkdtemp(prefix="mlflow-schema-"))
        try:
            build_registry(PlatformSettings.from_env({"MLOPS_HOME": str(home)})).client().search_registered_models()
            os.replace(home / "mlflow.db", path)  # atomic: a concurrent session copies a whole file or makes its own
        finally:
            shutil.rmtree(home, ignore_errors=True)
    return path


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A real MLflow registry (SQLite store, local artifacts) of this test module's own."""
    home = tmp_path_factory.mktemp("mlflow")
    settings = PlatformSettings.from_env({"MLOPS_HOME": str(home)})
    shutil.copyfile(migrated_mlflow_db(), home / "mlflow.db")
    return build_registry(settings)
