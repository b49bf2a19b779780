"""Deploy assets (one partition per deployment) with temporary stores; the deploy sensor; a real-data demo."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from sklearn.pipeline import Pipeline

from mlops_assets.deploy.assets import (
    DEPLOYMENT_KEY,
    PINNED_MODEL_KEY,
    deployment,
    pinned_model,
    titanic_survival_model_file,
)
from mlops_assets.deploy.automation import deploy_sensor
from mlops_assets.deploy.config import load_deployments
from mlops_assets.deploy.models import read_pin, write_pin
from mlops_assets.deploy.records import delete_record, read_status
from mlops_assets.deploy.validation import PIPELINE_CHECK, PREDICTION_CHECK, SCHEMA_CHECK, run_checks
from resources.data_source import DataSource
from resources.mlflow_registry import MlflowRegistry
from resources.model_bucket import sha256_bytes
from resources.snapshots import current_snapshot, read_snapshot_file
from tests.deploy.helpers import Explodes, pickle_bytes, upload_and_deploy

DEPLOYMENTS = load_deployments()
NODE = DEPLOYMENT_KEY.to_python_identifier()


@pytest.fixture
def registry(tmp_path) -> MlflowRegistry:
    return MlflowRegistry(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "art"))


def release(store, bucket, registry, name: str, instance=None) -> dg.ExecuteInProcessResult:
    instance = instance or dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("deployments", [name])
    return dg.materialize(
        [pinned_model, deployment],
        partition_key=name,
        instance=instance,
        raise_on_error=False,
        resources={"object_store": store, "model_bucket": bucket, "mlflow": registry},
    )


def check_outcomes(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_pinned_model_passes_the_original_suite_and_is_published(local_store, local_bucket, registry, paris_skops):
    upload_and_deploy(local_store, local_bucket, "paris_airbnb_price", paris_skops)
    local_store.delete("serving/deploy/paris_airbnb_price/CURRENT.json")  # published by Dagster this time
    result = release(local_store, local_bucket, registry, "paris_airbnb_price")
    assert result.success
    assert check_outcomes(result) == {SCHEMA_CHECK: True, PIPELINE_CHECK: True, PREDICTION_CHECK: True}
    pointer = current_snapshot(local_store, "deploy/paris_airbnb_price")
    record = json.loads(read_snapshot_file(local_store, pointer, "deployment.json"))
    assert record["pin"] == read_pin(local_store, "paris_airbnb_price").to_json()
    assert record["config"]["name"] == "paris_airbnb_price"
    schema = json.loads(read_snapshot_file(local_store, pointer, "schema.json"))
    assert list(schema["properties"]) == DEPLOYMENTS["paris_airbnb_price"].field_names
    onnx = read_snapshot_file(local_store, pointer, "model.onnx")
    assert record["compiled"]["sha256"] == sha256_bytes(onnx)
    metadata = result.asset_materializations_for_node(NODE)[0].metadata
    assert metadata["serving_runtime"].value == "onnxruntime" and metadata["compiled_probe_rows"].value >= 300
    assert metadata["compiled_max_relative_error"].value <= 1e-4
    status = read_status(local_store, "paris_airbnb_price")  # what `mlops deployments` shows
    assert all(check["passed"] for check in status["checks"].values()) and len(status["checks"]) == 3


def test_failing_blocking_check_keeps_the_previous_deployment(local_store, local_bucket, registry, paris_skops):
    upload_and_deploy(local_store, local_bucket, "paris_airbnb_price", paris_skops)
    instance = dg.DagsterInstance.ephemeral()
    assert release(local_store, local_bucket, registry, "paris_airbnb_price", instance).success
    before = current_snapshot(local_store, "deploy/paris_airbnb_price")["snapshot_id"]
    # A pickled pipeline that cannot predict, uploaded and pinned by a user (as the CLI does: nothing published):
    broken = pickle_bytes(Pipeline([("boom", Explodes())]))
    write_pin(
        local_store,
        "paris_airbnb_price",
        local_bucket.upload(local_bucket.default_bucket, "broken.pkl", broken, "2.0"),
        sha256_bytes(broken),
    )
    result = release(local_store, local_bucket, registry, "paris_airbnb_price", instance)
    assert check_outcomes(result)[PREDICTION_CHECK] is False
    assert not result.is_node_success(NODE)
    assert current_snapshot(local_store, "deploy/paris_airbnb_price")["snapshot_id"] == before  # still served
    status = read_status(local_store, "paris_airbnb_price")
    assert "predicting the raw example failed" in status["checks"][PREDICTION_CHECK]["description"]


def test_tampered_pinned_file_fails_the_asset_with_the_reason(
    local_store, local_bucket, registry, paris_skops, tmp_path
):
    upload_and_deploy(local_store, local_bucket, "paris_airbnb_price", paris_skops)
    pin = read_pin(local_store, "paris_airbnb_price")
    next(tmp_path.joinpath("buckets").rglob(pin.version_id)).write_bytes(b"tampered")
    result = release(local_store, local_bucket, registry, "paris_airbnb_price")
    failure = result.failure_data_for_node(PINNED_MODEL_KEY.to_python_identifier())
    assert "does not match the digest recorded at upload" in failure.error.message


def test_run_checks_reports_each_failed_check():
    outcomes = {o.name: o for o in run_checks(DEPLOYMENTS["titanic_survival"], object())}
    assert outcomes[SCHEMA_CHECK].passed and not outcomes[PIPELINE_CHECK].passed
    assert not outcomes[PREDICTION_CHECK].passed and "AttributeError" in outcomes[PREDICTION_CHECK].description


def tick(instance, store, registry, cursor=None) -> dg.SensorResult:
    with dg.build_sensor_context(
        cursor=cursor, instance=instance, resources={"object_store": store, "mlflow": registry}
    ) as context:
        return deploy_sensor(context)


def test_sensor_adds_partitions_and_requests_a_release_once_per_new_pin(
    local_store, local_bucket, registry, paris_skops
):
    instance = dg.DagsterInstance.ephemeral()
    assert tick(instance, local_store, registry).run_requests == []
    upload_and_deploy(local_store, local_bucket, "paris_airbnb_price", paris_skops)
    first = tick(instance, local_store, registry)
    assert [r.partition_key for r in first.run_requests] == ["paris_airbnb_price"]
    assert [list(r.partition_keys) for r in first.dynamic_partitions_requests] == [["paris_airbnb_price"]]
    instance.add_dynamic_partitions("deployments", ["paris_airbnb_price"])
    assert tick(instance, local_store, registry, first.cursor).run_requests == []
    upload_and_deploy(local_store, local_bucket, "paris_airbnb_price", paris_skops, tag="2.0")
    again = tick(instance, local_store, registry, first.cursor).run_requests
    assert len(again) == 1 and read_pin(local_store, "paris_airbnb_price").version_id in again[0].tags["deploy/release"]
    delete_record(local_store, "paris_airbnb_price")  # `mlops undeploy`
    gone = tick(instance, local_store, registry, first.cursor)
    assert gone.run_requests == [] and isinstance(
        gone.dynamic_partitions_requests[0], dg.DeleteDynamicPartitionsRequest
    )


def test_sensor_skips_a_release_that_is_already_published(local_store, local_bucket, registry, paris_skops):
    upload_and_deploy(local_store, local_bucket, "paris_airbnb_price", paris_skops)
    instance = dg.DagsterInstance.ephemeral()
    assert release(local_store, local_bucket, registry, "paris_airbnb_price", instance).success
    result = tick(instance, local_store, registry)
    assert result.run_requests == [] and "paris_airbnb_price" in json.loads(result.cursor)


@pytest.mark.realdata
def test_titanic_model_trained_on_real_data_is_uploaded_deployed_and_checked(
    data_dir, local_store, local_bucket, registry, tmp_path
):
    source = DataSource(local_dir=str(data_dir), cache_dir=str(tmp_path / "cache"), offline=True)
    resources = {"object_store": local_store, "model_bucket": local_bucket, "data_source": source, "mlflow": registry}
    assert dg.materialize([titanic_survival_model_file], resources=resources).success
    upload = dg.materialize([titanic_survival_model_file], resources=resources)  # a second upload: not pinned
    metadata = upload.asset_materializations_for_node("deploy__titanic_survival_model_file")[0].metadata
    assert metadata["cv_accuracy"].value > 0.75 and metadata["deployment_created"].value is False
    assert metadata["training_rows"].value == 891
    result = release(local_store, local_bucket, registry, "titanic_survival")
    assert result.success and all(check_outcomes(result).values())
    # Its imputer of text columns has no ONNX converter: served by scikit-learn, and the metadata says why.
    published = result.asset_materializations_for_node(NODE)[0].metadata
    assert published["serving_runtime"].value == "scikit-learn"
    assert published["compilation"].value.startswith("not convertible:")
    versions = local_bucket.list_versions("models")
    assert [v.key for v in versions] == ["titanic_survival.skops"] * 2 and versions[0].tag.startswith("platform-")
    assert read_pin(local_store, "titanic_survival").version_id == versions[1].version_id  # the first upload
