"""Test helpers: small trained pipelines and a deployment published without Dagster (for serving tests)."""

from __future__ import annotations

import contextlib
import pickle
from dataclasses import asdict

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline

from mlops_assets.deploy.assets import deployment_files
from mlops_assets.deploy.compiled import compile_pipeline
from mlops_assets.deploy.config import load_deployments
from mlops_assets.deploy.constants import snapshot_system
from mlops_assets.deploy.models import ModelRefused, load_pinned, write_pin
from mlops_assets.deploy.records import DeploymentRecord, save_record
from mlops_assets.deploy.training import PARIS_COLUMNS, generate_paris_listings, paris_pipeline
from resources.model_bucket import ModelBucket, sha256_bytes
from resources.object_store import ObjectStore
from resources.snapshots import publish_snapshot

DEPLOYMENTS = load_deployments()


def small_paris_pipeline():
    data = generate_paris_listings(rows=300, seed=1)
    pipeline = paris_pipeline()
    pipeline.set_params(model__max_iter=10)
    return pipeline.fit(data[PARIS_COLUMNS], data["price"])


class Explodes(BaseEstimator, TransformerMixin):
    """A transformer whose predictions fail: the worker must record ERROR, not crash."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        raise RuntimeError("this model always fails")


class NotAllowed(BaseEstimator, TransformerMixin):
    """A custom class: not on the skops allow-list."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.zeros((len(X), 1))


def broken_pipeline():
    """A fitted Pipeline whose predictions raise."""
    return Pipeline([("boom", Explodes()), ("model", DummyClassifier().fit([[0.0], [1.0]], [0, 1]))])


def demo_record(name: str, key: str | None = None) -> DeploymentRecord:
    """The deployment config of a packaged demo, as stored in the object store (no checks run: tests publish
    broken models on purpose)."""
    demo = DEPLOYMENTS[name]
    spec = {
        "description": demo.description,
        "default": demo.default,
        "prediction": asdict(demo.prediction),
        "raw_example": demo.raw_example,
    }
    return DeploymentRecord(
        name=name, form=demo.form_config, spec=spec, model={"source": "bucket", "key": key or demo.model_key}
    )


def upload_and_deploy(
    store: ObjectStore,
    bucket: ModelBucket,
    name: str,
    data: bytes,
    key: str | None = None,
    tag: str = "1.0",
    compile_model: bool = True,
) -> dict:
    """Create the deployment, upload, pin and publish as `mlops deploy` and the Dagster assets would (compiled
    copy included), without running Dagster."""
    deployment = DEPLOYMENTS[name]
    record = save_record(store, demo_record(name, key))
    bucket.create_bucket(bucket.default_bucket)
    version = bucket.upload(bucket.default_bucket, key or deployment.model_key, data, tag)
    pin = write_pin(store, name, version, sha256_bytes(data))
    compilation = None
    if compile_model:
        with contextlib.suppress(ModelRefused):  # published anyway: serving must refuse it too
            compilation = compile_pipeline(deployment, load_pinned(bucket, pin))
    return publish_snapshot(
        store, snapshot_system(name), deployment_files(deployment, pin, "test-run", compilation, record)
    )


def skops_bytes(model) -> bytes:
    return sio.dumps(model)


def pickle_bytes(model) -> bytes:
    return pickle.dumps(model)


def frame(row: dict) -> pd.DataFrame:
    return pd.DataFrame([row])
