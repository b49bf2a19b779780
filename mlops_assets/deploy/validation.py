"""The original project's test suite for a model, as plain data: run by `mlops deploy` before anything is stored
(so a bad model is refused with one line) and by the blocking asset checks of every release.

1. the validation schema accepts the raw example;
2. the model is a scikit-learn Pipeline (so its preprocessing travels with it);
3. it predicts the raw example to a finite number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from mlops_assets.deploy.config import Deployment, predict_value, validated_row

SCHEMA_CHECK = "schema_accepts_raw_example"
PIPELINE_CHECK = "model_is_pipeline"
PREDICTION_CHECK = "predicts_raw_example_to_number"
DESCRIPTIONS = {
    SCHEMA_CHECK: "The validation schema of the deployment accepts the raw example.",
    PIPELINE_CHECK: "The model is a scikit-learn Pipeline.",
    PREDICTION_CHECK: "The model predicts the raw example to a finite number.",
}


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    description: str | None = None
    metadata: dict = field(default_factory=dict)


def field_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def run_checks(deployment: Deployment, model: Any) -> list[Outcome]:
    """The three checks on an already-loaded model; never raises for a bad model or example."""
    from sklearn.pipeline import Pipeline

    outcomes = []
    try:
        validated = validated_row(deployment, deployment.raw_example)
        outcomes.append(Outcome(SCHEMA_CHECK, True, metadata={"fields": len(validated)}))
    except ValidationError as exc:
        validated = None
        outcomes.append(Outcome(SCHEMA_CHECK, False, f"raw example rejected by the schema: {field_errors(exc)}"))

    is_pipeline = isinstance(model, Pipeline)
    outcomes.append(
        Outcome(
            PIPELINE_CHECK,
            is_pipeline,
            None
            if is_pipeline
            else f"{type(model).__name__} is not a sklearn Pipeline: upload "
            "the preprocessing and the estimator together",
            {"model_class": type(model).__name__},
        )
    )

    row = validated if validated is not None else deployment.raw_example
    try:
        value = predict_value(deployment, model, row)
        passed = isinstance(value, float) and math.isfinite(value)
        outcomes.append(
            Outcome(
                PREDICTION_CHECK,
                passed,
                None if passed else f"the prediction {value!r} is not a finite number",
                {"raw_example_prediction": value},
            )
        )
    except Exception as exc:  # any failure of a user's model is the check's finding, not a crash
        outcomes.append(
            Outcome(PREDICTION_CHECK, False, f"predicting the raw example failed: {type(exc).__name__}: {exc}")
        )
    return outcomes


def first_failure(outcomes: list[Outcome]) -> Outcome | None:
    return next((o for o in outcomes if not o.passed), None)
