"""Creating a deployment from a model and optional form and example: what `mlops deploy` and the demo bootstrap
share. Everything is checked before anything is stored, so a refused deploy leaves the previous one serving."""

from __future__ import annotations

from typing import Any

from mlops_assets.deploy.config import ConfigError, deployment_from_config
from mlops_assets.deploy.inference import _column_facts, default_example, infer_form
from mlops_assets.deploy.records import DeploymentRecord
from mlops_assets.deploy.validation import first_failure, run_checks


class DeployRefused(ConfigError):
    """The model, form or example cannot be deployed; the message is the one line the user sees."""


def _names(values) -> str:
    return ", ".join(repr(v) for v in values)


def prediction_rule(model: Any, proba_class: str | None) -> dict:
    """`predict` by default; with a class label, that class's probability as a percentage."""
    if proba_class is None:
        return {"method": "predict"}
    classes = [str(c.item() if hasattr(c, "item") else c) for c in getattr(model, "classes_", [])]
    if not hasattr(model, "predict_proba") or not classes:
        raise DeployRefused("--proba-class needs a classifier with predict_proba")
    if proba_class not in classes:
        raise DeployRefused(f"class {proba_class!r} is not one of the model's classes: {_names(classes)}")
    return {"method": "predict_proba", "class_index": classes.index(proba_class), "scale": 100.0, "decimals": 1}


def build_record(
    name: str,
    model: Any,
    model_ref: dict,
    form: dict | None = None,
    example: dict | None = None,
    spec: dict | None = None,
    proba_class: str | None = None,
) -> DeploymentRecord:
    """The record to store for `model`, after the checks pass on it; DeployRefused otherwise."""
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline):
        raise DeployRefused(
            f"the model is a {type(model).__name__}, not a scikit-learn Pipeline: deploy the "
            "preprocessing and the estimator together as one Pipeline"
        )
    spec = dict(spec or {})
    form_source = "form.yml" if form is not None else "inferred"
    if example is not None and not isinstance(example, dict):
        raise DeployRefused("the example must be one JSON object of column: value")
    try:
        form = form if form is not None else infer_form(name, model, example)
    except ConfigError as exc:
        raise DeployRefused(str(exc)) from None
    fields = [f.get("name") for f in (form.get("schema") or {}).get("fields") or [] if isinstance(f, dict)]
    model_columns = _column_facts(model)[0]
    if model_columns is not None:
        unknown = [f for f in fields if f not in model_columns]
        if unknown:
            raise DeployRefused(
                f"unknown column(s) {_names(unknown)}: the model's input columns are {_names(model_columns)}"
            )
        missing = [c for c in model_columns if c not in fields]
        if missing:
            raise DeployRefused(f"the form lacks the model's input column(s) {_names(missing)}")
    if example is not None:
        unknown = [k for k in example if k not in fields]
        if unknown:
            raise DeployRefused(f"the example has unknown column(s) {_names(unknown)}; the inputs are {_names(fields)}")
        spec["raw_example"] = example
    elif not spec.get("raw_example"):
        spec["raw_example"] = default_example(form) if fields else {}
    if proba_class is not None or "prediction" not in spec:
        spec["prediction"] = prediction_rule(model, proba_class)
    if proba_class is not None and not form.get("units"):
        form = {**form, "units": f"% probability of {proba_class}"}
    try:
        deployment = deployment_from_config(name, form, spec)
    except ConfigError as exc:
        raise DeployRefused(str(exc)) from None
    failure = first_failure(run_checks(deployment, model))
    if failure is not None:
        raise DeployRefused(f"check {failure.name} failed: {failure.description}")
    return DeploymentRecord(name=name, form=form, spec=spec, model=model_ref, form_source=form_source)
