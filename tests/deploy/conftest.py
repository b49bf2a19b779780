from __future__ import annotations

import pytest

from resources import build_object_store
from resources.model_bucket import LocalModelBucket, build_model_bucket
from resources.object_store import LocalObjectStore
from tests.deploy.helpers import skops_bytes, small_paris_pipeline


@pytest.fixture(scope="session")
def paris_model():
    return small_paris_pipeline()


@pytest.fixture(scope="session")
def paris_skops(paris_model) -> bytes:
    return skops_bytes(paris_model)


@pytest.fixture
def local_bucket(tmp_path) -> LocalModelBucket:
    return LocalModelBucket(root=str(tmp_path / "buckets"), default_bucket="models")


@pytest.fixture
def local_store(tmp_path) -> LocalObjectStore:
    return LocalObjectStore(root=str(tmp_path / "objects"))


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def bucket_env(request, monkeypatch):
    """The platform env on the local store or on moto_server S3, with a unique configured model bucket."""
    env = request.getfixturevalue("platform_env" if request.param == "local" else "s3_env")
    name = f"models-{request.param}-{abs(hash(request.node.name)) % 10**8}"
    monkeypatch.setenv("MLOPS_MODEL_BUCKET", name)
    return {**env, "MLOPS_MODEL_BUCKET": name}


@pytest.fixture
def stores(bucket_env, settings):
    return build_object_store(settings), build_model_bucket(settings)
