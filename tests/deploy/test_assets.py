"""Deploy assets and checks materialized with temporary stores; the pin sensor; the bootstrap."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from sklearn.pipeline import Pipeline

from mlops_assets.deploy.assets import (DEPLOYMENT_ASSETS, PINNED_MODELS, deployment_key, pinned_model_key,
                                        titanic_survival_model_file)
from mlops_assets.deploy.checks import CHECKS, PIPELINE_CHECK, PREDICTION_CHECK, SCHEMA_CHECK, evaluate
from mlops_assets.deploy.config import load_deployments
from mlops_assets.deploy.models import read_pin, write_pin
from resources.data_source import DataSource
from resources.model_bucket import sha256_bytes
from resources.snapshots import current_snapshot, read_snapshot_file
from sensors.deploy import deploy_pin_sensor
from tests.deploy.helpers import Explodes, pickle_bytes, upload_and_deploy

DEPLOYMENTS = load_deployments()


def model_checks(name: str) -> list:
    return [c for c in CHECKS if c.node_def.name == f"{name}_model_tests"]


def release(store, bucket, name: str, instance=None) -> dg.ExecuteInProcessResult:
    return dg.materialize([PINNED_MODELS[name], DEPLOYMENT_ASSETS[name], *model_checks(name)],
                          resources={"object_store": store, "model_bucket": bucket},
                          instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False)


def check_outcomes(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_pinned_model_passes_the_original_suite_and_is_published(local_store, local_bucket, paris_skops):
    upload_and_deploy(local_store, local_bucket, "paris_airbnb_price", paris_skops)
    result = release(local_store, local_bucket, "paris_airbnb_price")
    assert result.success
    assert check_outcomes(result) == {SCHEMA_CHECK: True, PIPELINE_CHECK: True, PREDICTION_CHECK: True}
    pointer = current_snapshot(local_store, "deploy/paris_airbnb_price")
    record = json.loads(read_snapshot_file(local_store, pointer, "deployment.json"))
    assert record["pin"] == read_pin(local_store, "paris_airbnb_price").to_json()
    schema = json.loads(read_snapshot_file(local_store, pointer, "schema.json"))
    assert list(schema["properties"]) == DEPLOYMENTS["paris_airbnb_price"].field_names
    onnx = read_snapshot_file(local_store, pointer, "model.onnx")
    assert record["compiled"]["sha256"] == sha256_bytes(onnx)
    published = result.asset_materializations_for_node(deployment_key("paris_airbnb_price").to_python_identifier())
    metadata = published[0].metadata
    assert metadata["serving_runtime"].value == "onnxruntime" and metadata["compiled_probe_rows"].value >= 300
    assert metadata["compiled_max_relative_error"].value <= 1e-4


def test_failing_blocking_check_keeps_the_previous_deployment(local_store, local_bucket, paris_skops):
    upload_and_deploy(local_store, local_bucket, "paris_airbnb_price", paris_skops)
    instance = dg.DagsterInstance.ephemeral()
    assert release(local_store, local_bucket, "paris_airbnb_price", instance).success
    before = current_snapshot(local_store, "deploy/paris_airbnb_price")["snapshot_id"]
    # A pickled pipeline that cannot predict, uploaded and pinned by a user (as the CLI does: nothing published):
    broken = pickle_bytes(Pipeline([("boom", Explodes())]))
    write_pin(local_store, "paris_airbnb_price", local_bucket.upload(local_bucket.default_bucket, "broken.pkl", broken,
                                                                     "2.0"), sha256_bytes(broken))
    result = release(local_store, local_bucket, "paris_airbnb_price", instance)
    assert check_outcomes(result)[PREDICTION_CHECK] is False
    assert not result.is_node_success(deployment_key("paris_airbnb_price").to_python_identifier())
    assert current_snapshot(local_store, "deploy/paris_airbnb_price")["snapshot_id"] == before  # still served


def test_tampered_pinned_file_fails_the_asset_with_the_reason(local_store, local_bucket, paris_skops, tmp_path):
    upload_and_deploy(local_store, local_bucket, "paris_airbnb_price", paris_skops)
    pin = read_pin(local_store, "paris_airbnb_price")
    next(tmp_path.joinpath("buckets").rglob(pin.version_id)).write_bytes(b"tampered")
    result = release(local_store, local_bucket, "paris_airbnb_price")
    failure = result.failure_data_for_node(pinned_model_key("paris_airbnb_price").to_python_identifier())
    assert "does not match the digest recorded at upload" in failure.error.message


def test_evaluate_reports_each_failed_check():
    deployment = DEPLOYMENTS["titanic_survival"]
    outcomes = {r.check_name: r for r in evaluate(deployment, object())}
    assert outcomes[SCHEMA_CHECK].passed and not outcomes[PIPELINE_CHECK].passed
    assert not outcomes[PREDICTION_CHECK].passed and "AttributeError" in outcomes[PREDICTION_CHECK].description


def test_pin_sensor_requests_a_release_once_per_new_pin(local_store, local_bucket, paris_skops):
    instance = dg.DagsterInstance.ephemeral()
    with dg.build_sensor_context(instance=instance, resources={"object_store": local_store}) as context:
        assert deploy_pin_sensor(context).run_requests == []
    upload_and_deploy(local_store, local_bucket, "paris_airbnb_price", paris_skops)
    with dg.build_sensor_context(instance=instance, resources={"object_store": local_store}) as context:
        first = deploy_pin_sensor(context)
        assert [r.asset_selection for r in first.run_requests] == [
            [pinned_model_key("paris_airbnb_price"), deployment_key("paris_airbnb_price")]]
    with dg.build_sensor_context(cursor=first.cursor, instance=instance, resources={"object_store": local_store}) as context:
        assert deploy_pin_sensor(context).run_requests == []
    upload_and_deploy(local_store, local_bucket, "paris_airbnb_price", paris_skops, tag="2.0")
    with dg.build_sensor_context(cursor=first.cursor, instance=instance, resources={"object_store": local_store}) as context:
        again = deploy_pin_sensor(context).run_requests
        assert len(again) == 1 and again[0].tags["deploy/version_id"] == read_pin(local_store, "paris_airbnb_price").version_id


def test_pin_sensor_skips_a_pin_that_is_already_deployed(local_store, local_bucket, paris_skops):
    upload_and_deploy(local_store, local_bucket, "paris_airbnb_price", paris_skops)
    instance = dg.DagsterInstance.ephemeral()
    assert release(local_store, local_bucket, "paris_airbnb_price", instance).success
    with dg.build_sensor_context(instance=instance, resources={"object_store": local_store}) as context:
        result = deploy_pin_sensor(context)
    assert result.run_requests == [] and "paris_airbnb_price" in json.loads(result.cursor)


@pytest.mark.realdata
def test_titanic_model_trained_on_real_data_is_uploaded_pinned_and_checked(data_dir, local_store, local_bucket, tmp_path):
    source = DataSource(local_dir=str(data_dir), cache_dir=str(tmp_path / "cache"), offline=True)
    result = dg.materialize(
        [titanic_survival_model_file, PINNED_MODELS["titanic_survival"], DEPLOYMENT_ASSETS["titanic_survival"],
         *model_checks("titanic_survival")],
        resources={"object_store": local_store, "model_bucket": local_bucket, "data_source": source},
    )
    assert result.success and all(check_outcomes(result).values())
    upload = result.asset_materializations_for_node("deploy__titanic_survival_model_file")[0].metadata
    assert upload["cv_accuracy"].value > 0.75 and upload["pinned_now"].value is True
    assert upload["training_rows"].value == 891
    # Its imputer of text columns has no ONNX converter: served by scikit-learn, and the metadata says why.
    published = result.asset_materializations_for_node("deploy__titanic_survival_deployment")[0].metadata
    assert published["serving_runtime"].value == "scikit-learn"
    assert published["compilation"].value.startswith("not convertible:")
    versions = local_bucket.list_versions("models")
    assert [v.key for v in versions] == ["titanic_survival.skops"] and versions[0].tag.startswith("platform-")
