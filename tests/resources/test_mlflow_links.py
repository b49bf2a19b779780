"""Links into the MLflow UI: built in one place from the `mlflow_ui_url` setting."""

from resources import build_registry
from resources.mlflow_registry import run_url, version_url
from resources.settings import PlatformSettings


def test_run_and_version_urls():
    assert run_url("http://127.0.0.1:5000", "3", "abc123") == "http://127.0.0.1:5000/#/experiments/3/runs/abc123"
    assert run_url("http://mlflow.example/", "0", "r") == "http://mlflow.example/#/experiments/0/runs/r"
    assert (
        version_url("http://127.0.0.1:5000", "titanic_modal", 7)
        == "http://127.0.0.1:5000/#/models/titanic_modal/versions/7"
    )
    assert version_url("http://h", "a model/x", "2") == "http://h/#/models/a%20model%2Fx/versions/2"


def test_ui_url_setting_reaches_the_registry(tmp_path):
    default = PlatformSettings.from_env({"MLOPS_HOME": str(tmp_path)})
    assert default.mlflow_ui_url == "http://127.0.0.1:5000"
    settings = PlatformSettings.from_env({"MLOPS_HOME": str(tmp_path), "MLOPS_MLFLOW_UI_URL": "http://ui:5001/"})
    registry = build_registry(settings)
    assert registry.ui_url == "http://ui:5001"
    links = registry.link_metadata("run9", "Pistachio_Classifier", 4, experiment_id="2")
    assert links["mlflow_run_url"].value == "http://ui:5001/#/experiments/2/runs/run9"
    assert links["mlflow_version_url"].value == "http://ui:5001/#/models/Pistachio_Classifier/versions/4"
