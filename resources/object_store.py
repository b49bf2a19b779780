"""The object store: where files, images, model files and serving snapshots live.

Two implementations behind one interface: a local folder (the default, nothing to set up) and S3 through
dagster-aws' `S3Resource` (any endpoint URL, so MinIO or moto work too). Asset code only sees `ObjectStore`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import PrivateAttr

if TYPE_CHECKING:  # dagster-aws loads boto3 and Dagster's storage layer: seconds, paid in S3 mode only
    from dagster_aws.s3 import S3Resource


class ObjectNotFound(KeyError):
    """Raised when a key is absent; the message names the key and the store."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0]) if self.args else "object not found"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime
    etag: str

    @property
    def version_token(self) -> str:
        """Identifies this content of this key: a new upload under the same key gets a new token."""
        return f"{self.key}@{self.etag}"


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder and a rename, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_key(key: str) -> str:
    key = key.strip("/")
    if not key or ".." in key.split("/"):
        raise ValueError(f"invalid object key: {key!r}")
    return key


class ObjectStore(dg.ConfigurableResource):
    """Interface of the object store. Keys are '/'-separated paths relative to the store's root."""

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        raise NotImplementedError

    def get_bytes(self, key: str) -> bytes:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def list_objects(self, prefix: str = "", since_last_modified: datetime | None = None) -> list[ObjectInfo]:
        """Objects under `prefix`, oldest first; with `since_last_modified`, only strictly newer ones."""
        raise NotImplementedError

    def uri(self, key: str) -> str:
        raise NotImplementedError

    def put_file(self, key: str, path: str | os.PathLike, content_type: str | None = None) -> str:
        return self.put_bytes(key, Path(path).read_bytes(), content_type)


class LocalObjectStore(ObjectStore):
    """A folder on disk. Writes are atomic (temp file + rename), so readers never see half a file."""

    root: str

    def _path(self, key: str) -> Path:
        return Path(self.root) / _check_key(key)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"object {key!r} not found in {self.root}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_objects(self, prefix: str = "", since_last_modified: datetime | None = None) -> list[ObjectInfo]:
        root = Path(self.root)
        prefix = prefix.lstrip("/")
        # S3 prefixes are plain string prefixes ("a/one" matches "a/one.png"): walk the deepest folder they name.
        base = root / prefix if (root / prefix).is_dir() else (root / prefix).parent
        if not base.exists():
            return []
        infos = []
        for path in base.rglob("*"):
            if not path.is_file() or path.name.startswith(".tmp-"):
                continue
            if not path.relative_to(root).as_posix().startswith(prefix):
                continue
            stat = path.stat()
            modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
            if since_last_modified is not None and modified <= since_last_modified:
                continue
            key = path.relative_to(root).as_posix()
            # Content MD5, like S3's single-part ETag: the same bytes uploaded twice keep one identity.
            etag = hashlib.md5(path.read_bytes()).hexdigest()
            infos.append(ObjectInfo(key=key, size=stat.st_size, last_modified=modified, etag=etag))
        return sorted(infos, key=lambda info: (info.last_modified, info.key))

    def uri(self, key: str) -> str:
        return self._path(key).resolve().as_uri()


class S3ObjectStore(ObjectStore):
    """A bucket (and optional key prefix) reached through dagster-aws' S3Resource."""

    s3: S3Resource
    bucket: str
    prefix: str = ""
    _client = PrivateAttr(default=None)

    def client(self):
        if self._client is None:
            self._client = self.s3.get_client()
        return self._client

    def _key(self, key: str) -> str:
        key = _check_key(key)
        return f"{self.prefix.strip('/')}/{key}" if self.prefix.strip("/") else key

    def _strip(self, full_key: str) -> str:
        prefix = self.prefix.strip("/")
        return full_key[len(prefix) + 1 :] if prefix else full_key

    def ensure_bucket(self) -> None:
        client = self.client()
        try:
            client.head_bucket(Bucket=self.bucket)
        except client.exceptions.ClientError:
            client.create_bucket(Bucket=self.bucket)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        extra = {"ContentType": content_type} if content_type else {}
        self.client().put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        client = self.client()
        try:
            return client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except client.exceptions.NoSuchKey:
            raise ObjectNotFound(f"object {key!r} not found in s3://{self.bucket}") from None

    def exists(self, key: str) -> bool:
        client = self.client()
        try:
            client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except client.exceptions.ClientError:
            return False

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=self.bucket, Key=self._key(key))

    def list_objects(self, prefix: str = "", since_last_modified: datetime | None = None) -> list[ObjectInfo]:
        from dagster_aws.s3.sensor import get_objects

        full_prefix = self._key(prefix) if prefix.strip("/") else (self.prefix.strip("/") + "/" if self.prefix else "")
        objects = get_objects(
            self.bucket, prefix=full_prefix, since_last_modified=since_last_modified, client=self.client()
        )
        return [
            ObjectInfo(
                key=self._strip(obj["Key"]),
                size=int(obj.get("Size", 0)),
                last_modified=obj["LastModified"],
                etag=str(obj.get("ETag", "")).strip('"'),
            )
            for obj in objects
        ]

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"
