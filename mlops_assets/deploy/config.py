"""Deployment configs: `deployments/<name>/form.yml` (the original's form format) and `deployment.yml`.

The validation schema is generated from form.yml so that its field names, order and types are exactly the raw
training columns the form collects; serving, the asset checks and the web form all use this one definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, create_model

DEPLOYMENTS_DIR = Path(__file__).parent / "deployments"
_DTYPES = {"int": int, "float": float, "str": str}
RESERVED_NAMES = {"predict"}  # would collide with GET /api/predict/{prediction_id}


class ConfigError(ValueError):
    """A deployment config that cannot be served; the message names the file and the entry."""


@dataclass(frozen=True)
class FormField:
    name: str
    type: str  # "select" or "number", as in the original's form.yml
    label: str
    required: bool
    values: tuple = ()
    dtype: str = "float"
    min: float | None = None
    max: float | None = None

    @property
    def python_type(self) -> type:
        return _DTYPES[self.dtype]


@dataclass(frozen=True)
class PredictionSpec:
    method: str = "predict"  # or "predict_proba"
    class_index: int = 1
    scale: float = 1.0
    decimals: int = 2


@dataclass(frozen=True, eq=False)  # identity hash: configs are loaded once and cached
class Deployment:
    name: str
    title: str
    units: str
    home: tuple[dict, ...]
    fields: tuple[FormField, ...]
    model_key: str
    description: str = ""
    default: bool = False
    prediction: PredictionSpec = field(default_factory=PredictionSpec)
    raw_example: dict = field(default_factory=dict)
    trainer: str | None = None
    form_config: dict = field(default_factory=dict)  # form.yml as loaded, published with each deployment

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def schema(self) -> type[BaseModel]:
        return build_schema(self)


def _field(raw: dict, where: str) -> FormField:
    name = raw.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"{where}: field name {name!r} must be a Python identifier (a raw column name)")
    kind = raw.get("type")
    if kind not in {"select", "number"}:
        raise ConfigError(f"{where}: field {name!r} has type {kind!r}; use select or number")
    dtype = raw.get("dtype") or ("str" if kind == "select" else "float")
    if dtype not in _DTYPES:
        raise ConfigError(f"{where}: field {name!r} has dtype {dtype!r}; use int, float or str")
    values = tuple(raw.get("values") or ())
    if kind == "select" and not values:
        raise ConfigError(f"{where}: select field {name!r} needs values")
    try:
        values = tuple(_DTYPES[dtype](v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: values of field {name!r} are not all {dtype}") from None
    return FormField(name=name, type=kind, label=str(raw.get("label") or name), required=bool(raw.get("required", True)),
                     values=values, dtype=dtype, min=raw.get("min"), max=raw.get("max"))


def load_deployment(folder: Path) -> Deployment:
    form_path, deploy_path = folder / "form.yml", folder / "deployment.yml"
    try:
        form = yaml.safe_load(form_path.read_text(encoding="utf-8")) or {}
        spec = yaml.safe_load(deploy_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{folder.name}: cannot read its config ({exc})") from None
    name = folder.name
    if not name.isidentifier() or name in RESERVED_NAMES:
        raise ConfigError(f"{folder}: deployment names must be identifiers other than {sorted(RESERVED_NAMES)}")
    raw_fields = (form.get("schema") or {}).get("fields") or []
    if not raw_fields:
        raise ConfigError(f"{form_path.parent.name}/form.yml: schema.fields is empty")
    fields = tuple(_field(raw, f"{name}/form.yml schema.fields[{i}]") for i, raw in enumerate(raw_fields))
    if len({f.name for f in fields}) != len(fields):
        raise ConfigError(f"{name}/form.yml: field names repeat")
    if not spec.get("model_key"):
        raise ConfigError(f"{name}/deployment.yml: model_key (the object key in the model bucket) is required")
    prediction = PredictionSpec(**(spec.get("prediction") or {}))
    if prediction.method not in {"predict", "predict_proba"}:
        raise ConfigError(f"{name}/deployment.yml: prediction.method must be predict or predict_proba")
    return Deployment(
        name=name, title=str(form.get("title") or name), units=str(form.get("units") or ""),
        home=tuple(form.get("home") or ()), fields=fields, model_key=str(spec["model_key"]),
        description=str(spec.get("description") or ""), default=bool(spec.get("default", False)),
        prediction=prediction, raw_example=dict(spec.get("raw_example") or {}), trainer=spec.get("trainer"),
        form_config=form,
    )


@cache
def load_deployments(root: Path = DEPLOYMENTS_DIR) -> dict[str, Deployment]:
    """Every deployment config under `root`, by name (sorted)."""
    folders = sorted(p for p in root.iterdir() if (p / "form.yml").is_file())
    return {folder.name: load_deployment(folder) for folder in folders}


def default_deployment(deployments: dict[str, Deployment]) -> Deployment | None:
    flagged = [d for d in deployments.values() if d.default]
    return flagged[0] if flagged else next(iter(deployments.values()), None)


@cache
def _schema_for(deployment: Deployment) -> type[BaseModel]:
    definitions: dict[str, Any] = {}
    for f in deployment.fields:
        annotation: Any = Literal[f.values] if f.values else f.python_type
        constraints = {k: v for k, v in (("ge", f.min), ("le", f.max)) if v is not None}
        if f.required:
            definitions[f.name] = (annotation, Field(..., title=f.label, **constraints))
        else:
            definitions[f.name] = (Optional[annotation], Field(None, title=f.label, **constraints))
    model_name = "".join(part.title() for part in deployment.name.split("_")) + "Input"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **definitions)


def build_schema(deployment: Deployment) -> type[BaseModel]:
    """The pydantic model of one raw row: config order, names and types; unknown fields are refused."""
    return _schema_for(deployment)


def input_frame(deployment: Deployment, row: dict) -> pd.DataFrame:
    """One validated row as the DataFrame the Pipeline was trained on (columns in config order)."""
    # Typed columns built in one go: this runs for every prediction, on the latency path.
    columns = {}
    for f in deployment.fields:
        value = row.get(f.name)
        if f.dtype == "str":  # a missing text is NaN, as read_csv gives it to training (imputers look for NaN)
            columns[f.name] = np.array([math.nan if value is None else value], dtype=object)
        elif f.dtype == "int" and value is not None:
            columns[f.name] = np.array([int(value)], dtype=np.int64)
        else:
            columns[f.name] = np.array([math.nan if value is None else float(value)])  # None → NaN, as in training
    return pd.DataFrame(columns, copy=False)


def predict_value(deployment: Deployment, model: Any, row: dict) -> float:
    """The number the form shows: predict, or a class probability, scaled and rounded per the config."""
    return scaled_value(deployment, raw_outputs(deployment, model, input_frame(deployment, row))[0])


def raw_outputs(deployment: Deployment, model: Any, frame: pd.DataFrame) -> np.ndarray:
    """One number per row before scaling: the prediction, or the configured class's probability."""
    spec = deployment.prediction
    if spec.method == "predict_proba":
        return np.asarray(model.predict_proba(frame))[:, spec.class_index]
    return np.asarray(model.predict(frame)).ravel()


def scaled_value(deployment: Deployment, raw: Any) -> float:
    spec = deployment.prediction
    value = float(raw) * spec.scale
    if not math.isfinite(value):
        raise ValueError(f"the model returned a non-finite value ({value})")
    return round(value, spec.decimals)
