"""The form of a deployment inferred from the fitted Pipeline itself, for `mlops deploy` without `--form`.

Columns come from what scikit-learn records at fit time: `feature_names_in_` (any estimator fitted on a
DataFrame), a ColumnTransformer's column lists, or a DictVectorizer's `feature_names_` (records in, as the
Pistachio model takes them). Options of a select field come from fitted OneHotEncoder / OrdinalEncoder
categories; a column with none is a number. Types come from the example when given (`--example`), else from
the categories; a number is float unless the example says int. A column that an imputer fills may be left
empty. The result is a form.yml document, so the rest of the platform sees no difference.
"""

from __future__ import annotations

import math
from typing import Any

from mlops_assets.deploy.config import ConfigError

ENCODERS = ("OneHotEncoder", "OrdinalEncoder")


class InferenceError(ConfigError):
    """The Pipeline does not say enough about its input; the message says what to pass instead."""


def _plain(value: Any) -> Any:
    """numpy scalars → Python values (YAML/JSON friendly); NaN → None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _column_names(columns: Any, names_in: list[str] | None) -> list[str] | None:
    """A ColumnTransformer's column spec as names (lists of names, or positions into names_in)."""
    if isinstance(columns, str):
        return [columns]
    try:
        items = list(columns)
    except TypeError:
        return None  # a callable or slice selector: nothing to read
    if all(isinstance(c, str) for c in items):
        return items
    if names_in is not None and all(isinstance(c, int) for c in items):
        return [names_in[c] for c in items]
    return None


def _steps(estimator: Any) -> list[Any]:
    """The estimator and everything nested in it (Pipeline steps, ColumnTransformer parts), depth first."""
    found = [estimator]
    for _, step in getattr(estimator, "steps", []):
        found += _steps(step)
    for _, transformer, _columns in getattr(estimator, "transformers_", []):
        if not isinstance(transformer, str):
            found += _steps(transformer)
    return found


def _column_facts(pipeline: Any) -> tuple[list[str] | None, dict[str, list], set[str]]:
    """(input columns, categories per column, columns an imputer fills) read from the fitted Pipeline."""
    columns = [str(c) for c in getattr(pipeline, "feature_names_in_", [])] or None
    categories: dict[str, list] = {}
    imputed: set[str] = set()
    for step in _steps(pipeline):
        if columns is None and type(step).__name__ == "ColumnTransformer" and hasattr(step, "feature_names_in_"):
            columns = [str(c) for c in step.feature_names_in_]
        if columns is None and type(step).__name__ == "DictVectorizer" and hasattr(step, "feature_names_"):
            columns = []
            for feature in step.feature_names_:
                base, _, value = str(feature).partition(step.separator)
                if value:  # one-hot of a text field: "colour=red"
                    categories.setdefault(base, []).append(value)
                if base not in columns:
                    columns.append(base)
        for _, transformer, spec in getattr(step, "transformers_", []):
            names = _column_names(spec, columns)
            if names is None or isinstance(transformer, str):
                continue
            for part in _steps(transformer):
                kind = type(part).__name__
                if kind in ENCODERS and hasattr(part, "categories_") and len(part.categories_) == len(names):
                    for name, values in zip(names, part.categories_, strict=False):
                        categories[name] = [v for v in map(_plain, values) if v is not None]
                if kind in {"SimpleImputer", "KNNImputer", "IterativeImputer"}:
                    imputed.update(names)
    return columns, categories, imputed


def _dtype(values: list, example: Any) -> str:
    if isinstance(example, bool):
        raise InferenceError("the example has a boolean value; use a number or a text")
    if isinstance(example, str):
        return "str"
    if isinstance(example, int):
        return "int" if not values or all(isinstance(v, int) for v in values) else "float"
    if isinstance(example, float):
        return "float"
    if values and all(isinstance(v, str) for v in values):
        return "str"
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    return "float"


def infer_columns(pipeline: Any, example: dict | None) -> list[str]:
    columns, _, _ = _column_facts(pipeline)
    if columns is None:
        if example:
            return list(example)
        raise InferenceError(
            f"{type(pipeline).__name__} does not record its input columns (fit it on a DataFrame); "
            "pass --example example.json or --form form.yml"
        )
    return columns


def infer_form(name: str, pipeline: Any, example: dict | None = None) -> dict:
    """A form.yml document (title, units, home, schema.fields) for the Pipeline's raw input columns."""
    columns, categories, imputed = _column_facts(pipeline)
    columns = infer_columns(pipeline, example)
    fields = []
    for column in columns:
        example_value = (example or {}).get(column)
        values = categories.get(column, [])
        dtype = _dtype(values, example_value)
        field: dict[str, Any] = {
            "name": column,
            "type": "select" if values else "number",
            "dtype": dtype,
            "label": column.replace("_", " "),
            "required": column not in imputed,
        }
        if values:
            field["values"] = values
        fields.append(field)
    model = type(pipeline[-1]).__name__ if hasattr(pipeline, "steps") else type(pipeline).__name__
    return {
        "title": name.replace("_", " ").capitalize(),
        "units": "",
        "home": [
            {
                "title": "What it does",
                "subtitle": f"A scikit-learn {model}",
                "content": f"Fill in the {len(fields)} input columns the model was trained on; the form and "
                "its validation were generated from the fitted Pipeline.",
            }
        ],
        "schema": {"fields": fields},
    }


def default_example(form: dict) -> dict:
    """A row the form accepts when no example is given: the first option of each select, 0 for numbers."""
    row = {}
    for f in form["schema"]["fields"]:
        if f.get("values"):
            row[f["name"]] = f["values"][0]
        else:
            row[f["name"]] = 0 if f.get("dtype") == "int" else 0.0
    return row
