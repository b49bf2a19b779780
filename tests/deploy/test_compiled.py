"""The compiled (ONNX) copy of a deployed Pipeline: published only when it agrees, used only where vouched for."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from mlops_assets.deploy.compiled import (
    RELATIVE_TOLERANCE,
    CompiledModel,
    compile_pipeline,
    compiled_supports,
    probe_rows,
)
from mlops_assets.deploy.config import predict_value
from mlops_assets.deploy.training import PARIS_COLUMNS, generate_paris_listings, paris_pipeline, titanic_pipeline
from resources.snapshots import read_snapshot_file
from serving.deploy_served import ServedModel, load_compiled
from tests.deploy.helpers import DEPLOYMENTS, broken_pipeline, upload_and_deploy

PARIS = DEPLOYMENTS["paris_airbnb_price"]
TITANIC = DEPLOYMENTS["titanic_survival"]


def test_probe_rows_are_valid_inputs_covering_every_option_and_missing_values():
    for deployment in (PARIS, TITANIC):
        rows = probe_rows(deployment)
        for row in rows:
            deployment.schema.model_validate(row)  # raises if a probe is not something the API would accept
        for f in deployment.fields:
            seen = {row[f.name] for row in rows}
            assert set(f.values) <= seen
            assert (None in seen) == (not f.required)
    assert probe_rows(PARIS) == probe_rows(PARIS)  # seeded: a deployment's verdict is reproducible


def test_paris_pipeline_compiles_and_answers_like_the_pipeline(paris_model):
    compilation = compile_pipeline(PARIS, paris_model)
    assert compilation.onnx is not None, compilation.note
    assert compilation.probe_rows >= 300 and compilation.max_relative_error <= RELATIVE_TOLERANCE
    compiled = CompiledModel(PARIS, compilation.onnx)
    data = generate_paris_listings(rows=50, seed=99)[PARIS_COLUMNS]
    for row in data.to_dict("records"):
        row["mois"] = int(row["mois"])
        expected = predict_value(PARIS, paris_model, row)
        assert compiled.predict_value(row) == pytest.approx(expected, rel=1e-4, abs=0.011)  # shown with 2 decimals
    record = compilation.record()
    assert record["file"] == "model.onnx" and len(record["sha256"]) == 64


def test_a_converter_that_gets_the_model_wrong_is_refused():
    # skl2onnx drops the log link of a gamma-loss HistGradientBoosting model: it converts, but answers log(price).
    data = generate_paris_listings(rows=300, seed=1)
    pipeline = paris_pipeline().set_params(model=HistGradientBoostingRegressor(loss="gamma", max_iter=10))
    pipeline.fit(data[PARIS_COLUMNS], data["price"])
    compilation = compile_pipeline(PARIS, pipeline)
    assert compilation.onnx is None and compilation.record() is None
    assert compilation.note.startswith("disagrees with the Pipeline on probe row")
    assert compilation.max_relative_error > RELATIVE_TOLERANCE


def test_a_pipeline_with_custom_steps_is_served_by_scikit_learn():
    compilation = compile_pipeline(PARIS, broken_pipeline())
    assert compilation.onnx is None and compilation.note.startswith("not convertible:")


def test_served_model_uses_the_compiled_copy_only_for_rows_it_vouches_for(paris_model):
    compiled = CompiledModel(PARIS, compile_pipeline(PARIS, paris_model).onnx)
    served = ServedModel(PARIS, paris_model, pin=None, snapshot_id="s", dagster_run_id=None, compiled=compiled)
    value, runtime = served.predict(PARIS.raw_example)
    assert runtime == "onnxruntime" and value == pytest.approx(
        predict_value(PARIS, paris_model, PARIS.raw_example), abs=0.011
    )
    missing_text = {**PARIS.raw_example, "room_type": None}  # string tensors cannot carry a missing value
    assert not compiled_supports(PARIS, missing_text)
    assert served.predict(missing_text)[1] == "scikit-learn"
    assert ServedModel(PARIS, paris_model, None, "s", None).predict(PARIS.raw_example)[1] == "scikit-learn"


def test_a_missing_text_value_reaches_the_pipeline_as_nan_so_its_imputer_fills_it():
    rng = np.random.default_rng(0)
    rows = 200
    train = pd.DataFrame(
        {
            "Pclass": rng.choice([1.0, 2.0, 3.0], rows),
            "Sex": rng.choice(["male", "female"], rows),
            "Age": rng.uniform(1, 80, rows),
            "SibSp": rng.integers(0, 3, rows).astype(float),
            "Parch": rng.integers(0, 3, rows).astype(float),
            "Fare": rng.uniform(5, 100, rows),
            "Embarked": rng.choice(["C", "S", "Q"], rows, p=[0.6, 0.3, 0.1]),  # C is the most frequent
        }
    )
    model = titanic_pipeline().fit(train, rng.integers(0, 2, rows))
    row = dict(TITANIC.raw_example)
    assert predict_value(TITANIC, model, {**row, "Embarked": None}) == predict_value(
        TITANIC, model, {**row, "Embarked": "C"}
    )


def test_serving_loads_the_published_copy_only_when_its_digest_matches(local_store, local_bucket, paris_skops):
    pointer = upload_and_deploy(local_store, local_bucket, "paris_airbnb_price", paris_skops)
    record = json.loads(read_snapshot_file(local_store, pointer, "deployment.json"))["compiled"]
    assert isinstance(load_compiled(PARIS, local_store, pointer, record), CompiledModel)
    onnx_key = f"{pointer['prefix']}/{record['file']}"
    local_store.put_bytes(onnx_key, local_store.get_bytes(onnx_key) + b"tampered")
    assert load_compiled(PARIS, local_store, pointer, record) is None  # the Pipeline serves instead
    assert load_compiled(PARIS, local_store, pointer, None) is None
