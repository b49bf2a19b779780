"""Deployment configs: `deployments/<name>/form.yml` (the original's form format) and `deployment.yml`.

The validation schema is generated from form.yml so that its field names, order and types are exactly the raw
training columns the form collects; serving, the asset checks and the web form all use this one definition.
"""

from __future__ import annotations

import keyword
import math
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, WithJsonSchema, create_model

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

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
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise ConfigError(f"{where}: field name {name!r} must be a non-empty column name")
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
    return FormField(
        name=name,
        type=kind,
        label=str(raw.get("label") or name),
        required=bool(raw.get("required", True)),
        values=values,
        dtype=dtype,
        min=raw.get("min"),
        max=raw.get("max"),
    )


def deployment_from_config(name: str, form: dict, spec: dict) -> Deployment:
    """A deployment from its two documents: the form (form.yml's format) and the serving spec (prediction rule,
    raw example, description, default flag). Both the packaged demos and the configs in the object store
    (written by `mlops deploy`) come through here, so they are validated the same way."""
    if not isinstance(name, str) or not name.isidentifier() or name in RESERVED_NAMES:
        raise ConfigError(f"deployment name {name!r} must be a Python identifier other than {sorted(RESERVED_NAMES)}")
    if not isinstance(form, dict) or not isinstance(spec, dict):
        raise ConfigError(f"{name}: the form and the deployment spec must be mappings")
    raw_fields = (form.get("schema") or {}).get("fields") or []
    if not raw_fields:
        raise ConfigError(f"{name}/form.yml: schema.fields is empty")
    fields = tuple(_field(raw, f"{name}/form.yml schema.fields[{i}]") for i, raw in enumerate(raw_fields))
    if len({f.name for f in fields}) != len(fields):
        raise ConfigError(f"{name}/form.yml: field names repeat")
    try:
        prediction = PredictionSpec(**(spec.get("prediction") or {}))
    except TypeError as exc:
        raise ConfigError(f"{name}: prediction: {exc}") from None
    if prediction.method not in {"predict", "predict_proba"}:
        raise ConfigError(f"{name}: prediction.method must be predict or predict_proba")
    return Deployment(
        name=name,
        title=str(form.get("title") or name),
        units=str(form.get("units") or ""),
        home=tuple(form.get("home") or ()),
        fields=fields,
        model_key=str(spec.get("model_key") or ""),
        description=str(spec.get("description") or ""),
        default=bool(spec.get("default", False)),
        prediction=prediction,
        raw_example=dict(spec.get("raw_example") or {}),
        trainer=spec.get("trainer"),
        form_config=form,
    )


def read_yaml(path: Path) -> dict:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path.name}: cannot read it ({exc})") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path.name}: expected a mapping at the top level")
    return loaded


def load_deployment(folder: Path) -> Deployment:
    """A packaged demo config: `form.yml` and `deployment.yml` in a folder named after the deployment."""
    return deployment_from_config(folder.name, read_yaml(folder / "form.yml"), read_yaml(folder / "deployment.yml"))


@cache
def load_deployments(root: Path = DEPLOYMENTS_DIR) -> dict[str, Deployment]:
    """The packaged demo configs under `root`, by name (sorted). Deployments themselves live in the object store."""
    folders = sorted(p for p in root.iterdir() if (p / "form.yml").is_file())
    return {folder.name: load_deployment(folder) for folder in folders}


def default_deployment(deployments: dict[str, Deployment]) -> Deployment | None:
    flagged = [d for d in deployments.values() if d.default]
    return flagged[0] if flagged else next(iter(deployments.values()), None)


def _one_of(values: tuple):
    def check(value):
        if value not in values:
            raise ValueError(f"Input should be {' or '.join(map(repr, values))}")
        return value

    return check


def json_integer(value: Any) -> Any:
    """JSON Schema's integer: 4 and 4.0, never true or "4" (pydantic's strict int refuses 4.0, its lax int takes
    true and "4")."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("Input should be a valid integer")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("Input should be a valid integer, got a number with a fractional part")
    return int(value)


JsonInteger = Annotated[int, Strict(False), BeforeValidator(json_integer)]


def _annotation(f: FormField) -> Any:
    if not f.values:
        return JsonInteger if f.dtype == "int" else f.python_type
    if f.dtype == "str":
        return Literal[f.values]
    # Literal[1, 2, 3] would take `true` as 1: a strict number checked against the options instead, documented
    # as the same enum the JSON Schema promises.
    kind = "integer" if f.dtype == "int" else "number"
    return Annotated[
        JsonInteger if f.dtype == "int" else f.python_type,
        AfterValidator(_one_of(f.values)),
        WithJsonSchema({"type": kind, "enum": list(f.values)}),
    ]


def _needs_alias(name: str) -> bool:
    return not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") or hasattr(BaseModel, name)


def validated_row(deployment: Deployment, data: Any) -> dict:
    """A request body validated by the deployment's schema, keyed by column name (ValidationError otherwise)."""
    schema = deployment.schema
    model = schema.model_validate_json(data) if isinstance(data, (bytes, str)) else schema.model_validate(data)
    return model.model_dump(mode="json", by_alias=True)


@lru_cache(maxsize=256)
def _schema_for(deployment: Deployment) -> type[BaseModel]:
    definitions: dict[str, Any] = {}
    for f in deployment.fields:
        annotation = _annotation(f)
        constraints = {k: v for k, v in (("ge", f.min), ("le", f.max)) if v is not None}
        if _needs_alias(f.name):  # e.g. wine's "od280/od315_of_diluted_wines": the JSON key stays the column
            constraints["alias"] = f.name
        attribute = f"field_{len(definitions)}" if "alias" in constraints else f.name
        if f.required:
            definitions[attribute] = (annotation, Field(..., title=f.label, **constraints))
        else:
            definitions[attribute] = (Optional[annotation], Field(None, title=f.label, **constraints))  # noqa: UP045  (built at run time from any annotation)
    model_name = "".join(part.title() for part in deployment.name.split("_")) + "Input"
    # Strict: a JSON boolean or a numeric string is not a number (ints are still accepted as floats).
    return create_model(model_name, __config__=ConfigDict(extra="forbid", strict=True), **definitions)


def build_schema(deployment: Deployment) -> type[BaseModel]:
    """The pydantic model of one raw row: config order, names and types; unknown fields are refused."""
    return _schema_for(deployment)


def input_frame(deployment: Deployment, row: dict) -> pd.DataFrame:
    """One validated row as the DataFrame the Pipeline was trained on (columns in config order)."""
    import numpy as np  # cached after the first prediction; not paid by importing serving
    import pandas as pd

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
    import numpy as np

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
