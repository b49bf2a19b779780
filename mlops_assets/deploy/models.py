"""Pins (which object version a deployment serves) and the verified loading of a pinned model file.

A pin lives in the platform object store at `deploy/pins/<deployment>.json`, so the CLI, the Dagster sensor and
the serving process read the same record whether the store is a local folder or S3.

Loading order is the security boundary: the bytes' SHA-256 must equal the digest recorded at upload before
anything is deserialised; `.skops` files are read without executing code and may only contain the types of
`SKOPS_ALLOWED_TYPES` beyond skops' defaults; pickles run code when loaded, so they are accepted only from the
configured model bucket (`MLOPS_MODEL_BUCKET`), whose write access is the trust boundary.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from resources.mlflow_registry import model_uri
from resources.model_bucket import ModelBucket, ObjectVersion, sha256_bytes
from resources.object_store import ObjectNotFound, ObjectStore

SKOPS_SUFFIX = ".skops"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")

# Types that skops does not trust by default but that plain scikit-learn Pipelines contain. Each one is data
# (a dtype, fitted tree nodes), not a callable: loading them cannot run code. Anything else is refused by name.
SKOPS_ALLOWED_TYPES = frozenset(
    {
        "numpy.dtype",  # OneHotEncoder's output dtype parameter
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # fitted node arrays of HistGradientBoosting*
    }
)


class ModelRefused(Exception):
    """The pinned file must not be loaded (digest mismatch, untrusted types, pickle from elsewhere...)."""


@dataclass(frozen=True)
class Pin:
    deployment: str
    bucket: str
    key: str
    version_id: str
    sha256: str
    tag: str | None
    pinned_at: str
    # "bucket": a version of a model bucket object; "mlflow": key is models:/NAME/VERSION, tag the alias followed
    source: str = "bucket"

    @property
    def token(self) -> str:
        """Changes whenever the deployment should serve different bytes."""
        return f"{self.bucket}/{self.key}@{self.version_id}:{self.sha256[:16]}"

    def to_json(self) -> dict:
        return asdict(self)


def pin_key(deployment: str) -> str:
    return f"deploy/pins/{deployment}.json"


def read_pin(store: ObjectStore, deployment: str) -> Pin | None:
    try:
        return Pin(**json.loads(store.get_bytes(pin_key(deployment))))
    except ObjectNotFound:
        return None


def write_pin(store: ObjectStore, deployment: str, version: ObjectVersion, sha256: str) -> Pin:
    pin = Pin(
        deployment=deployment,
        bucket=version.bucket,
        key=version.key,
        version_id=version.version_id,
        sha256=sha256,
        tag=version.tag,
        pinned_at=datetime.now(UTC).isoformat(),
    )
    store.put_bytes(pin_key(deployment), json.dumps(pin.to_json()).encode(), "application/json")
    return pin


def pin_version(store: ObjectStore, bucket: ModelBucket, deployment: str, bucket_name: str, version_id: str) -> Pin:
    """Pin an existing version; the digest recorded at upload becomes the one every load must match."""
    version = bucket.find_version(bucket_name, version_id)
    digest = version.sha256
    if not digest:
        # Uploaded by another tool: what is in the bucket now becomes the reference from here on.
        digest = sha256_bytes(bucket.read_version(bucket_name, version.key, version_id))
    return write_pin(store, deployment, version, digest)


def deserialize(data: bytes, key: str, from_trusted_bucket: bool) -> Any:
    """Bytes → estimator, by file type; raises ModelRefused instead of running untrusted code."""
    import skops.io as sio  # its trusted-type scan costs seconds: paid by the first load, not by every import

    name = key.lower()
    if name.endswith(SKOPS_SUFFIX):
        untrusted = sio.get_untrusted_types(data=data)
        refused = sorted(set(untrusted) - SKOPS_ALLOWED_TYPES)
        if refused:
            raise ModelRefused(f"{key}: contains types outside the allow-list, refused: {', '.join(refused)}")
        return sio.loads(data, trusted=untrusted)
    if name.endswith(PICKLE_SUFFIXES):
        if not from_trusted_bucket:
            raise ModelRefused(
                f"{key}: pickle files are loaded only from the configured model bucket "
                "(MLOPS_MODEL_BUCKET); upload a .skops file to use another bucket"
            )
        import joblib

        return joblib.load(io.BytesIO(data)) if name.endswith(".joblib") else pickle.loads(data)
    raise ModelRefused(f"{key}: unsupported model file type; use .skops (safe) or .pkl/.joblib")


def resolve_registry_pin(registry, deployment: str, uri: str) -> Pin:
    """The registry version `uri` names now (an alias is resolved), as the pin a release checks and serves."""
    from mlops_assets.deploy.records import parse_registry_uri

    model, alias, version = parse_registry_uri(uri)
    if alias is not None:
        found = registry.version_by_alias(model, alias)
        if found is None:
            raise ModelRefused(f"{uri}: no version of {model!r} holds the alias {alias!r} in the MLflow registry")
    else:
        try:
            found = registry.client().get_model_version(model, version)
        except Exception:
            raise ModelRefused(f"{uri}: no such model version in the MLflow registry") from None
    return Pin(
        deployment=deployment,
        bucket="mlflow",
        key=model_uri(model, found.version),
        version_id=str(found.version),
        sha256="",
        tag=alias,
        pinned_at=datetime.now(UTC).isoformat(),
        source="mlflow",
    )


def load_pinned(bucket: ModelBucket, pin: Pin, registry=None) -> Any:
    """The pinned pipeline, loaded only after its bytes match the digest recorded at upload.

    Registry versions are loaded by MLflow's scikit-learn flavour: whoever may register models is trusted, as
    for pickles in the configured bucket."""
    if pin.source == "mlflow":
        if registry is None:
            raise ModelRefused(f"{pin.key}: no MLflow registry configured to load it from")
        return registry.load_sklearn(pin.key)
    data = bucket.read_version(pin.bucket, pin.key, pin.version_id)
    digest = sha256_bytes(data)
    if digest != pin.sha256:
        raise ModelRefused(
            f"{pin.key} version {pin.version_id} in bucket {pin.bucket!r}: SHA-256 {digest[:12]}… does not match "
            f"the digest recorded at upload {pin.sha256[:12]}…; the file was changed, refusing to load it"
        )
    return deserialize(data, pin.key, from_trusted_bucket=pin.bucket == bucket.default_bucket)
