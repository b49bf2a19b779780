"""Verified loading: digest before deserialising, skops allow-list, pickles only from the configured bucket."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from sklearn.pipeline import Pipeline

from mlops_assets.deploy.models import ModelRefused, load_pinned, pin_version, read_pin
from tests.deploy.helpers import Explodes, NotAllowed, pickle_bytes, skops_bytes


def upload_and_pin(store, models, data: bytes, key: str, bucket: str | None = None):
    bucket = bucket or models.default_bucket
    models.create_bucket(bucket)
    version = models.upload(bucket, key, data, "1.0")
    return pin_version(store, models, "paris_airbnb_price", bucket, version.version_id)


def test_pinned_skops_model_loads_and_predicts(local_store, local_bucket, paris_skops):
    pin = upload_and_pin(local_store, local_bucket, paris_skops, "paris.skops")
    assert read_pin(local_store, "paris_airbnb_price") == pin
    assert isinstance(load_pinned(local_bucket, pin), Pipeline)


def test_tampered_local_file_is_refused(local_store, local_bucket, paris_skops):
    pin = upload_and_pin(local_store, local_bucket, paris_skops, "paris.skops")
    stored = next(Path(local_bucket.root).rglob(pin.version_id))
    stored.write_bytes(paris_skops[:-10] + b"0123456789")
    with pytest.raises(ModelRefused, match="does not match the digest recorded at upload"):
        load_pinned(local_bucket, pin)


@pytest.mark.s3
def test_s3_version_whose_recorded_digest_differs_is_refused(s3_env, stores, paris_skops, monkeypatch):
    store, models = stores
    pin = upload_and_pin(store, models, paris_skops, "paris.skops")
    client = boto3.client("s3", endpoint_url=s3_env["MLOPS_S3_ENDPOINT_URL"], region_name="us-east-1")
    head = client.head_object(Bucket=pin.bucket, Key=pin.key, VersionId=pin.version_id)
    assert head["Metadata"]["sha256"] == pin.sha256
    # Another tool overwrites the key: the pinned version is still the verified one.
    client.put_object(Bucket=pin.bucket, Key=pin.key, Body=b"not a model")
    assert isinstance(load_pinned(models, pin), Pipeline)
    forged = pin.__class__(**{**pin.to_json(), "sha256": "0" * 64})
    with pytest.raises(ModelRefused, match="does not match"):
        load_pinned(models, forged)


def test_skops_file_with_types_outside_the_allow_list_is_refused(local_store, local_bucket):
    data = skops_bytes(Pipeline([("custom", NotAllowed())]))
    pin = upload_and_pin(local_store, local_bucket, data, "custom.skops")
    with pytest.raises(ModelRefused, match="tests.deploy.helpers.NotAllowed"):
        load_pinned(local_bucket, pin)


def test_pickles_load_only_from_the_configured_bucket(local_store, local_bucket):
    data = pickle_bytes(Pipeline([("boom", Explodes())]))
    trusted = upload_and_pin(local_store, local_bucket, data, "model.pkl")
    assert isinstance(load_pinned(local_bucket, trusted), Pipeline)
    elsewhere = upload_and_pin(local_store, local_bucket, data, "model.pkl", bucket="other-bucket")
    with pytest.raises(ModelRefused, match="only from the configured model bucket"):
        load_pinned(local_bucket, elsewhere)


def test_unknown_file_type_is_refused(local_store, local_bucket):
    pin = upload_and_pin(local_store, local_bucket, b"{}", "model.onnx")
    with pytest.raises(ModelRefused, match="unsupported model file type"):
        load_pinned(local_bucket, pin)
