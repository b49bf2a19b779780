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
    settings = PlatformSettings.from_env(
        {
            "MLOPS_HOME": str(tmp_path),
            "MLOPS_OBJECT_STORE": "S3",
            "MLOPS_S3_BUCKET": "b",
            "MLOPS_S3_ENDPOINT_URL": "http://127.0.0.1:1",
        }
    )
    store = build_resources(settings)["object_store"]
    assert isinstance(store, S3ObjectStore) and store.bucket == "b"
    assert settings.mlflow_artifact_root == "s3://b/mlflow-artifacts"
    # MLflow reaches those artifacts through the same endpoint, unless told another one.
    registry = build_resources(settings)["mlflow"]
    assert settings.mlflow_s3_endpoint_url == registry.s3_endpoint_url == "http://127.0.0.1:1"
    other = PlatformSettings.from_env(
        {
            "MLOPS_HOME": str(tmp_path),
            "MLOPS_S3_ENDPOINT_URL": "http://127.0.0.1:1",
            "MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:2",
        }
    )
    assert other.mlflow_s3_endpoint_url == "http://127.0.0.1:2"


def test_registry_sets_mlflows_s3_endpoint_before_any_mlflow_call(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", "")  # restored after the test
    settings = PlatformSettings.from_env(
        {"MLOPS_HOME": str(tmp_path), "MLOPS_OBJECT_STORE": "s3", "MLOPS_S3_ENDPOINT_URL": "http://127.0.0.1:1"}
    )
    build_resources(settings)["mlflow"].activate()
    import os

    assert os.environ["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:1"


def test_a_tracking_server_keeps_the_artifacts(tmp_path):
    settings = PlatformSettings.from_env(
        {"MLOPS_HOME": str(tmp_path), "MLOPS_OBJECT_STORE": "s3", "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}
    )
    assert settings.mlflow_artifact_root == "mlflow-artifacts:/"  # proxied by the server, wherever it stores them


def test_unknown_store_is_refused():
    with pytest.raises(ValueError, match="MLOPS_OBJECT_STORE"):
        PlatformSettings.from_env({"MLOPS_OBJECT_STORE": "ftp"})


def test_monitoring_settings_reach_the_monitoring_resource(tmp_path):
    defaults = build_resources(PlatformSettings.from_env({"MLOPS_HOME": str(tmp_path)}))["monitoring"]
    assert (defaults.drift_share_threshold, defaults.performance_drop_tolerance, defaults.retrain_on_failure) == (
        0.5,
        0.1,
        False,
    )
    monitoring = build_resources(
        PlatformSettings.from_env(
            {
                "MLOPS_HOME": str(tmp_path),
                "MLOPS_DRIFT_SHARE_THRESHOLD": "0.3",
                "MLOPS_PERFORMANCE_DROP_TOLERANCE": "0.05",
                "MLOPS_RETRAIN_ON_MONITORING_FAILURE": "1",
                "MLOPS_DAGSTER_UI_URL": "http://dagster:3000/",
            }
        )
    )["monitoring"]
    assert (monitoring.drift_share_threshold, monitoring.performance_drop_tolerance) == (0.3, 0.05)
    assert monitoring.retrain_on_failure
    assert monitoring.asset_url("titanic", "input_drift") == "http://dagster:3000/assets/titanic/input_drift"


@pytest.mark.parametrize("value", ["1.5", "-0.1", "half"])
def test_a_drift_threshold_outside_zero_to_one_is_refused(value):
    with pytest.raises(ValueError, match="MLOPS_DRIFT_SHARE_THRESHOLD"):
        PlatformSettings.from_env({"MLOPS_DRIFT_SHARE_THRESHOLD": value})
