"""Deployment configs: the schema generated from form.yml (names, order, types) and its errors."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from mlops_assets.deploy.config import ConfigError, input_frame, load_deployment, load_deployments, predict_value


def test_paris_schema_matches_the_original_validation_class():
    deployment = load_deployments()["paris_airbnb_price"]
    schema = deployment.schema
    fields = schema.model_fields
    assert list(fields) == [
        "neighbourhood",
        "room_type",
        "minimum_nights",
        "mois",
        "voyageurs",
        "chambres",
        "lits",
        "salle_de_bains",
    ]
    validated = schema(**deployment.raw_example)
    assert validated.mois == 2 and isinstance(validated.mois, int)
    assert isinstance(validated.chambres, float) and validated.minimum_nights == 1.555


@pytest.mark.parametrize(
    "change, field",
    [
        ({"mois": 13}, "mois"),
        ({"mois": 2.5}, "mois"),
        ({"voyageurs": "many"}, "voyageurs"),
        ({"room_type": "Castle"}, "room_type"),
        ({"extra": 1}, "extra"),
    ],
)
def test_schema_errors_name_the_field(change, field):
    deployment = load_deployments()["paris_airbnb_price"]
    with pytest.raises(ValidationError) as info:
        deployment.schema(**{**deployment.raw_example, **change})
    assert [e["loc"][-1] for e in info.value.errors()] == [field]


def test_optional_fields_become_missing_values_in_the_frame():
    deployment = load_deployments()["titanic_survival"]
    row = deployment.schema(**{**deployment.raw_example, "Age": None}).model_dump()
    frame = input_frame(deployment, row)
    assert list(frame.columns) == deployment.field_names and math.isnan(frame.loc[0, "Age"])


def test_prediction_spec_scales_probabilities():
    deployment = load_deployments()["titanic_survival"]

    class Half:
        def predict_proba(self, X):
            return [[0.25, 0.75]]

    assert predict_value(deployment, Half(), deployment.raw_example) == 75.0


def test_bad_config_names_file_and_field(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "form.yml").write_text("title: x\nschema:\n  fields:\n    - name: a b\n      type: slider\n")
    (folder / "deployment.yml").write_text("model_key: m.skops\n")
    with pytest.raises(ConfigError, match=r"broken/form.yml schema.fields\[0\].*'a b' has type 'slider'"):
        load_deployment(folder)
