"""A registered Pistachio model file read back: its SHA-256 is the file's own, and loading refuses any type
outside the code's allow-list before deserialising, naming it."""

import hashlib

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mlops_assets.pistachio.features import as_records
from mlops_assets.pistachio.model_file import ModelFile, UntrustedModel

ROWS = pd.DataFrame({"AREA": [1.0, 2.0, 3.0, 4.0], "PERIMETER": [4.0, 3.0, 2.0, 1.0]})
LABELS = np.array(["Kirmizi_Pistachio", "Kirmizi_Pistachio", "Siit_Pistachio", "Siit_Pistachio"])


def records(frame):  # as_records' twin, but not on the allow-list
    return frame.to_dict(orient="records")


def pipeline(first_step):
    return make_pipeline(FunctionTransformer(first_step), DictVectorizer(sparse=False),
                         LogisticRegression()).fit(ROWS, LABELS)


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
    with pytest.raises(UntrustedModel,
                       match=r"^model file contains untrusted types: tests\.pistachio\.test_model_file\.records$"):
        ModelFile(data).load()
