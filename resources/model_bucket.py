"""Versioned model buckets: where users upload trained scikit-learn Pipelines, one object version per upload.

Two implementations behind one interface, selected by the platform settings like the object store:
- `LocalModelBucket`: folders under MLOPS_HOME/buckets that emulate S3 versioning (every upload keeps a new,
  never-overwritten version with its own id, tags and last-modified time; the newest is the latest).
- `S3ModelBucket`: real S3 buckets with versioning enabled, reached through dagster-aws' `S3Resource`.

Every upload records the file's SHA-256 as an object tag (and as metadata on S3), so a deployment can refuse a
file whose bytes changed after the upload.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import PrivateAttr

from resources.object_store import atomic_write
from resources.settings import PlatformSettings

if TYPE_CHECKING:  # dagster-aws loads boto3 and Dagster's storage layer: seconds, paid in S3 mode only
    from dagster_aws.s3 import S3Resource

VERSION_TAG = "Version"
SHA256_TAG = "sha256"
DEFAULT_MODEL_BUCKET = "mlops-models"
# S3 rules: 3-63 chars, lowercase letters, digits, dots and hyphens, starting and ending alphanumeric.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Characters S3 accepts in tag values.
_TAG_VALUE = re.compile(r"^[\w .:/=+@-]{1,256}$")


class ModelBucketError(Exception):
    """A user-facing problem with a bucket, key or version; the message is one clear sentence."""


class BucketNotFound(ModelBucketError):
    pass


class VersionNotFound(ModelBucketError):
    pass


@dataclass(frozen=True)
class ObjectVersion:
    bucket: str
    key: str
    version_id: str
    is_latest: bool
    last_modified: datetime
    size: int
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.tags.get(VERSION_TAG)

    @property
    def sha256(self) -> str | None:
        return self.tags.get(SHA256_TAG)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_bucket_name(name: str) -> str:
    if not _BUCKET_NAME.match(name or "") or ".." in name:
        raise ModelBucketError(f"invalid bucket name {name!r}: use 3-63 lowercase letters, digits, dots or hyphens")
    return name


def check_tag(tag: str) -> str:
    if not _TAG_VALUE.match(tag or ""):
        raise ModelBucketError(f"invalid tag {tag!r}: use letters, digits, spaces and . : / = + @ - _")
    return tag


def check_key(key: str) -> str:
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise ModelBucketError(f"invalid object key {key!r}")
    return key


class ModelBucket(dg.ConfigurableResource):
    """Interface of a versioned bucket store. `default_bucket` is the configured bucket deployments trust."""

    default_bucket: str = DEFAULT_MODEL_BUCKET

    def create_bucket(self, name: str) -> bool:
        """Create `name` with versioning on; returns False when it already existed (versioning is ensured)."""
        raise NotImplementedError

    def delete_bucket(self, name: str, force: bool = False) -> int:
        """Delete `name`; a non-empty bucket needs `force` (every version is deleted). Returns versions deleted."""
        raise NotImplementedError

    def bucket_exists(self, name: str) -> bool:
        raise NotImplementedError

    def upload(self, bucket: str, key: str, data: bytes, tag: str) -> ObjectVersion:
        """Store `data` as a new version of `key`, tagged Version=`tag` and sha256=<digest>."""
        raise NotImplementedError

    def list_versions(self, bucket: str, key: str | None = None) -> list[ObjectVersion]:
        """Every version in the bucket (or of `key`), newest first."""
        raise NotImplementedError

    def read_version(self, bucket: str, key: str, version_id: str) -> bytes:
        raise NotImplementedError

    def find_version(self, bucket: str, version_id: str) -> ObjectVersion:
        for version in self.list_versions(bucket):
            if version.version_id == version_id:
                return version
        raise VersionNotFound(f"version {version_id!r} not found in bucket {bucket!r}")

    def upload_file(self, bucket: str, path: str | os.PathLike, tag: str) -> ObjectVersion:
        path = Path(path)
        if not path.is_file():
            raise ModelBucketError(f"model file {str(path)!r} not found")
        return self.upload(bucket, path.name, path.read_bytes(), tag)


class LocalModelBucket(ModelBucket):
    """Buckets as folders: `<root>/<bucket>/objects/<quoted key>/<version_id>` plus a JSON sidecar per version."""

    root: str

    def _bucket_dir(self, name: str) -> Path:
        return Path(self.root) / check_bucket_name(name)

    def _existing(self, name: str) -> Path:
        path = self._bucket_dir(name)
        if not (path / ".bucket.json").is_file():
            raise BucketNotFound(f"bucket {name!r} does not exist (create it with `mlops create-bucket {name}`)")
        return path

    def _key_dir(self, bucket: str, key: str) -> Path:
        return self._existing(bucket) / "objects" / urllib.parse.quote(check_key(key), safe="")

    def bucket_exists(self, name: str) -> bool:
        return (self._bucket_dir(name) / ".bucket.json").is_file()

    def create_bucket(self, name: str) -> bool:
        path = self._bucket_dir(name)
        if (path / ".bucket.json").is_file():
            return False
        (path / "objects").mkdir(parents=True, exist_ok=True)
        meta = {"name": name, "versioning": "Enabled", "created": datetime.now(UTC).isoformat()}
        atomic_write(path / ".bucket.json", json.dumps(meta).encode())
        return True

    def delete_bucket(self, name: str, force: bool = False) -> int:
        path = self._existing(name)
        versions = self.list_versions(name)
        if versions and not force:
            raise ModelBucketError(
                f"bucket {name!r} holds {len(versions)} object version(s); use --force to delete them"
            )
        shutil.rmtree(path)
        return len(versions)

    def upload(self, bucket: str, key: str, data: bytes, tag: str) -> ObjectVersion:
        key_dir = self._key_dir(bucket, key)
        key_dir.mkdir(parents=True, exist_ok=True)
        version_id = secrets.token_urlsafe(24)
        meta = {
            "key": key,
            "version_id": version_id,
            "size": len(data),
            "modified_ns": time.time_ns(),
            "tags": {VERSION_TAG: check_tag(tag), SHA256_TAG: sha256_bytes(data)},
        }
        # Data first, sidecar last: a version becomes visible only once its bytes are complete.
        atomic_write(key_dir / version_id, data)
        atomic_write(key_dir / f"{version_id}.json", json.dumps(meta).encode())
        return next(v for v in self.list_versions(bucket, key) if v.version_id == version_id)

    def list_versions(self, bucket: str, key: str | None = None) -> list[ObjectVersion]:
        objects = self._existing(bucket) / "objects"
        key_dirs = [self._key_dir(bucket, key)] if key is not None else sorted(objects.iterdir())
        versions: list[ObjectVersion] = []
        for key_dir in key_dirs:
            metas = [json.loads(p.read_text()) for p in key_dir.glob("*.json")] if key_dir.is_dir() else []
            metas.sort(key=lambda m: m["modified_ns"], reverse=True)
            for index, meta in enumerate(metas):
                versions.append(
                    ObjectVersion(
                        bucket=bucket,
                        key=meta["key"],
                        version_id=meta["version_id"],
                        is_latest=index == 0,
                        last_modified=datetime.fromtimestamp(meta["modified_ns"] / 1e9, tz=UTC),
                        size=int(meta["size"]),
                        tags=dict(meta["tags"]),
                    )
                )
        return sorted(versions, key=lambda v: v.last_modified, reverse=True)

    def read_version(self, bucket: str, key: str, version_id: str) -> bytes:
        path = self._key_dir(bucket, key) / version_id
        if "/" in version_id or not path.is_file():
            raise VersionNotFound(f"version {version_id!r} of {key!r} not found in bucket {bucket!r}")
        return path.read_bytes()


class S3ModelBucket(ModelBucket):
    """Real S3 buckets with versioning, through dagster-aws' S3Resource (any endpoint: AWS, MinIO, moto)."""

    s3: S3Resource
    _client = PrivateAttr(default=None)

    def client(self):
        if self._client is None:
            self._client = self.s3.get_client()
        return self._client

    @staticmethod
    def _read_error(exc, bucket: str, what: str) -> ModelBucketError:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            return BucketNotFound(f"bucket {bucket!r} does not exist")
        if code in {"NoSuchVersion", "NoSuchKey", "InvalidArgument", "404"}:
            return VersionNotFound(f"{what} not found in bucket {bucket!r}")
        return ModelBucketError(f"S3 error on bucket {bucket!r}: {code or exc}")

    def bucket_exists(self, name: str) -> bool:
        try:
            self.client().head_bucket(Bucket=check_bucket_name(name))
            return True
        except self.client().exceptions.ClientError:
            return False

    def _require(self, name: str) -> None:
        if not self.bucket_exists(name):
            raise BucketNotFound(f"bucket {name!r} does not exist (create it with `mlops create-bucket {name}`)")

    def create_bucket(self, name: str) -> bool:
        client = self.client()
        created = not self.bucket_exists(name)
        if created:
            client.create_bucket(Bucket=name)
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return created

    def delete_bucket(self, name: str, force: bool = False) -> int:
        self._require(name)
        client = self.client()
        entries = []
        for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
            entries += [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
        if entries and not force:
            raise ModelBucketError(
                f"bucket {name!r} holds {len(entries)} object version(s); use --force to delete them"
            )
        for start in range(0, len(entries), 1000):
            client.delete_objects(Bucket=name, Delete={"Objects": entries[start : start + 1000], "Quiet": True})
        client.delete_bucket(Bucket=name)
        return len(entries)

    def upload(self, bucket: str, key: str, data: bytes, tag: str) -> ObjectVersion:
        self._require(bucket)
        client = self.client()
        status = client.get_bucket_versioning(Bucket=bucket).get("Status")
        if status != "Enabled":
            raise ModelBucketError(
                f"bucket {bucket!r} has no versioning; run `mlops create-bucket {bucket}` to enable it"
            )
        digest = sha256_bytes(data)
        tags = urllib.parse.urlencode({VERSION_TAG: check_tag(tag), SHA256_TAG: digest})
        response = client.put_object(
            Bucket=bucket, Key=check_key(key), Body=data, Tagging=tags, Metadata={SHA256_TAG: digest}
        )
        return self._describe(bucket, key, response["VersionId"])

    def _describe(self, bucket: str, key: str, version_id: str) -> ObjectVersion:
        return next(v for v in self.list_versions(bucket, key) if v.version_id == version_id)

    def _tags(self, bucket: str, key: str, version_id: str) -> dict[str, str]:
        response = self.client().get_object_tagging(Bucket=bucket, Key=key, VersionId=version_id)
        return {t["Key"]: t["Value"] for t in response.get("TagSet", [])}

    def list_versions(self, bucket: str, key: str | None = None) -> list[ObjectVersion]:
        self._require(bucket)
        client = self.client()
        extra = {"Prefix": key} if key else {}
        versions = []
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, **extra):
            for item in page.get("Versions", []):
                if key is not None and item["Key"] != key:
                    continue
                versions.append(
                    ObjectVersion(
                        bucket=bucket,
                        key=item["Key"],
                        version_id=item["VersionId"],
                        is_latest=bool(item["IsLatest"]),
                        last_modified=item["LastModified"],
                        size=int(item.get("Size", 0)),
                        tags=self._tags(bucket, item["Key"], item["VersionId"]),
                    )
                )
        return sorted(versions, key=lambda v: v.last_modified, reverse=True)

    def read_version(self, bucket: str, key: str, version_id: str) -> bytes:
        try:
            return self.client().get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"].read()
        except self.client().exceptions.ClientError as exc:
            raise self._read_error(exc, bucket, f"version {version_id!r} of {key!r}") from None


def configured_bucket_name(env: Mapping[str, str] | None = None) -> str:
    """The bucket deployments load from (MLOPS_MODEL_BUCKET); pickles are accepted only from it."""
    env = os.environ if env is None else env
    return env.get("MLOPS_MODEL_BUCKET") or DEFAULT_MODEL_BUCKET


def build_model_bucket(settings: PlatformSettings, env: Mapping[str, str] | None = None) -> ModelBucket:
    default_bucket = configured_bucket_name(env)
    if settings.object_store == "s3":
        from dagster_aws.s3 import S3Resource

        S3ModelBucket.model_rebuild()  # resolves the `s3: S3Resource` field with the name imported just above
        s3 = S3Resource(endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
        return S3ModelBucket(s3=s3, default_bucket=default_bucket)
    return LocalModelBucket(root=str(settings.home / "buckets"), default_bucket=default_bucket)


@dg.resource(description="The versioned model bucket store, resolved from the platform settings when a run starts.")
def model_bucket_from_settings(_context) -> ModelBucket:
    return build_model_bucket(PlatformSettings.from_env())
