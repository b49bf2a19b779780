import pytest

from resources import build_resources
from resources.object_store import LocalObjectStore, S3ObjectStore
from resources.settings import PlatformSettings


def test_defaults_keep_everything_in_the_project_home(tmp_path):
    settings = PlatformSettings.from_env({"MLOPS_HOME": str(tmp_path)})
    assert settings.object_store == "local"
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert settings.duckdb_path == tmp_path / "warehouse.duckdb"
    resources = build_resources(settings)
    assert isinstance(resources["object_store"], LocalObjectStore)
    assert resources["data_source"].local_dir is None


def test_s3_is_selected_by_settings_alone(tmp_path):
    settings = PlatformSettings.from_env({"MLOPS_HOME": str(tmp_path), "MLOPS_OBJECT_STORE": "S3",
                                          "MLOPS_S3_BUCKET": "b", "MLOPS_S3_ENDPOINT_URL": "http://127.0.0.1:1"})
    store = build_resources(settings)["object_store"]
    assert isinstance(store, S3ObjectStore) and store.bucket == "b"
    assert settings.mlflow_artifact_root == "s3://b/mlflow-artifacts"


def test_unknown_store_is_refused():
    with pytest.raises(ValueError, match="MLOPS_OBJECT_STORE"):
        PlatformSettings.from_env({"MLOPS_OBJECT_STORE": "ftp"})
