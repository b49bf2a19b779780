"""A registered Pistachio model file read back: its SHA-256 is the file's own, and loading refuses any type
outside the code's allow-list before deserialising, naming it."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mlops_assets.pistachio.features import TRUSTED_MODEL_TYPES, as_records
from mlops_assets.pistachio.model_file import ModelFile, UntrustedModel, fetch_model_file, load_pipeline

ROWS = pd.DataFrame({"AREA": [1.0, 2.0, 3.0, 4.0], "PERIMETER": [4.0, 3.0, 2.0, 1.0]})
LABELS = np.array(["Kirmizi_Pistachio", "Kirmizi_Pistachio", "Siit_Pistachio", "Siit_Pistachio"])


def records(frame):  # as_records' twin, but not on the allow-list
    return frame.to_dict(orient="records")


def floats(frame):  # another step the allow-list does not know
    return frame.astype(float)


def pipeline(first_step, *more_steps):
    return make_pipeline(
        *(FunctionTransformer(step) for step in more_steps),
        FunctionTransformer(first_step),
        DictVectorizer(sparse=False),
        LogisticRegression(),
    ).fit(ROWS, LABELS)


def test_digest_is_the_sha256_of_the_exact_bytes():
    data = skops.io.dumps(pipeline(as_records))
    assert ModelFile(data).sha256 == hashlib.sha256(data).hexdigest()
    assert ModelFile(data + b"\0").sha256 != ModelFile(data).sha256


def test_an_allow_listed_pipeline_loads_and_predicts_as_saved():
    model = pipeline(as_records)
    loaded = ModelFile(skops.io.dumps(model)).load()
    assert list(loaded.predict(ROWS)) == list(model.predict(ROWS))
    assert np.allclose(loaded.predict_proba(ROWS), model.predict_proba(ROWS))


def test_a_file_with_a_type_outside_the_allow_list_is_refused_by_name():
    data = skops.io.dumps(pipeline(records))
    with pytest.raises(
        UntrustedModel, match=r"^model file contains untrusted types: tests\.pistachio\.test_model_file\.records$"
    ):
        ModelFile(data).load()


def test_every_type_outside_the_allow_list_is_named_in_order():
    data = skops.io.dumps(pipeline(records, floats))
    with pytest.raises(
        UntrustedModel,
        match=r": tests\.pistachio\.test_model_file\.floats, "
        r"tests\.pistachio\.test_model_file\.records$",
    ):
        ModelFile(data).load()


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A pipeline logged and registered the way the Pistachio assets do it, in a real (file-backed) MLflow."""
    from resources import build_registry
    from resources.settings import PlatformSettings

    registry = build_registry(PlatformSettings.from_env({"MLOPS_HOME": str(tmp_path_factory.mktemp("mlflow"))}))
    model = pipeline(as_records)
    with registry.start_run("model-file-test") as run:
        info = registry.log_sklearn_model(model, name="model", skops_trusted_types=TRUSTED_MODEL_TYPES)
    version = registry.register("model_file_demo", info.model_uri, run.info.run_id).version
    return registry, model, info, f"models:/model_file_demo/{version}"


def test_the_registered_version_is_fetched_as_its_skops_file_and_loads_as_saved(registered):
    import mlflow

    registry, model, info, version_uri = registered
    model_file = fetch_model_file(registry, version_uri)
    logged = Path(mlflow.artifacts.download_artifacts(artifact_uri=info.model_uri)) / "model.skops"
    assert model_file.data == logged.read_bytes()
    assert model_file.sha256 == hashlib.sha256(logged.read_bytes()).hexdigest()
    loaded = load_pipeline(registry, version_uri)
    assert list(loaded.predict(ROWS)) == list(model.predict(ROWS))
    # A URI naming the file itself (not the model's folder) reads that file.
    assert fetch_model_file(registry, logged.as_uri()).data == model_file.data
