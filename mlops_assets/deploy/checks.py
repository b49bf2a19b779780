"""The original project's test suite, run as blocking asset checks on every pinned model.

1. the validation schema accepts the config's raw example;
2. the model is a scikit-learn Pipeline (so its preprocessing travels with it);
3. it predicts the raw example to a finite number.
A failure stops the run before `<name>_deployment`, so serving keeps the last good version.
"""


import math
from typing import Iterator

import dagster as dg
from pydantic import ValidationError

from mlops_assets.deploy.assets import DEPLOYMENTS, load_or_fail, pinned_model_key, require_pin
from mlops_assets.deploy.config import Deployment, input_frame, predict_value
from resources.model_bucket import ModelBucket
from resources.object_store import ObjectStore

SCHEMA_CHECK = "schema_accepts_raw_example"
PIPELINE_CHECK = "model_is_pipeline"
PREDICTION_CHECK = "predicts_raw_example_to_number"


def evaluate(deployment: Deployment, model) -> list[dg.AssetCheckResult]:
    """The three checks on an already-loaded model; pure so tests can call it with any object."""
    from sklearn.pipeline import Pipeline

    key = pinned_model_key(deployment.name)
    results = []
    try:
        validated = deployment.schema(**deployment.raw_example).model_dump()
        results.append(dg.AssetCheckResult(asset_key=key, check_name=SCHEMA_CHECK, passed=True,
                                           metadata={"fields": dg.MetadataValue.int(len(validated))}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        validated = None
        results.append(dg.AssetCheckResult(asset_key=key, check_name=SCHEMA_CHECK, passed=False,
                                           description=f"raw example rejected by the schema: {problems}"))

    is_pipeline = isinstance(model, Pipeline)
    results.append(dg.AssetCheckResult(
        asset_key=key, check_name=PIPELINE_CHECK, passed=is_pipeline,
        metadata={"model_class": dg.MetadataValue.text(type(model).__name__)},
        description=None if is_pipeline else f"{type(model).__name__} is not a sklearn Pipeline: upload the "
                                             "preprocessing and the estimator together",
    ))

    row = validated if validated is not None else deployment.raw_example
    try:
        value = predict_value(deployment, model, row)
        passed = isinstance(value, float) and math.isfinite(value)
        results.append(dg.AssetCheckResult(asset_key=key, check_name=PREDICTION_CHECK, passed=passed,
                                           metadata={"raw_example_prediction": dg.MetadataValue.float(value),
                                                     "input_columns": dg.MetadataValue.text(
                                                         ", ".join(input_frame(deployment, row).columns))}))
    except Exception as exc:  # any failure of a user's model is the check's finding, not a crash
        results.append(dg.AssetCheckResult(asset_key=key, check_name=PREDICTION_CHECK, passed=False,
                                           description=f"predicting the raw example failed: {type(exc).__name__}: {exc}"))
    return results


def build_checks(deployment: Deployment) -> dg.AssetChecksDefinition:
    key = pinned_model_key(deployment.name)
    specs = [dg.AssetCheckSpec(name, asset=key, blocking=True, description=text) for name, text in (
        (SCHEMA_CHECK, "The validation schema generated from form.yml accepts the raw example."),
        (PIPELINE_CHECK, "The pinned model is a scikit-learn Pipeline."),
        (PREDICTION_CHECK, "The pinned model predicts the raw example to a finite number."),
    )]

    @dg.multi_asset_check(specs=specs, name=f"{deployment.name}_model_tests")
    def model_tests(object_store: ObjectStore, model_bucket: dg.ResourceParam[ModelBucket]) -> Iterator[dg.AssetCheckResult]:
        model = load_or_fail(model_bucket, require_pin(object_store, deployment.name))
        yield from evaluate(deployment, model)

    return model_tests


CHECKS = [build_checks(d) for d in DEPLOYMENTS.values()]
