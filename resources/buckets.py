"""The S3 buckets a deployment needs, made sure of when it starts instead of failing deep inside a step.

The code location, the serving API and the bootstrap call `ensure_buckets(settings)` first. In S3 mode it checks
the object store's bucket, the versioned model bucket and the bucket of an `s3://` MLflow artifact root; a
missing one is created (with versioning where deployments need it) when the endpoint allows it, otherwise start-up
stops with `BucketUnavailable`, whose message is one line naming the bucket and the endpoint.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from resources.settings import PlatformSettings


class BucketUnavailable(RuntimeError):
    """A bucket the platform needs is missing (or unreachable) and could not be created."""


@dataclass(frozen=True)
class RequiredBucket:
    name: str
    endpoint_url: str | None  # None: AWS
    purposes: tuple[str, ...]
    versioned: bool = False

    @property
    def endpoint(self) -> str:
        return self.endpoint_url or "AWS S3"

    def describe(self) -> str:
        return f"S3 bucket {self.name!r} ({', '.join(self.purposes)}) at {self.endpoint}"


def required_buckets(settings: PlatformSettings, env: Mapping[str, str] | None = None) -> list[RequiredBucket]:
    """Every bucket the settings point at, once per (endpoint, name); empty for a purely local deployment."""
    from resources.model_bucket import configured_bucket_name

    wanted: list[tuple[str, str | None, str, bool]] = []
    if settings.object_store == "s3":
        wanted.append((settings.s3_bucket, settings.s3_endpoint_url, "object store", False))
        wanted.append((configured_bucket_name(env), settings.s3_endpoint_url, "model bucket", True))
    tables = urllib.parse.urlparse(settings.delta_root)
    if settings.table_format == "delta" and tables.scheme == "s3" and tables.netloc:
        wanted.append((tables.netloc, settings.s3_endpoint_url, "Delta tables", False))
    artifacts = urllib.parse.urlparse(settings.mlflow_artifact_root)
    if artifacts.scheme == "s3" and artifacts.netloc:
        wanted.append((artifacts.netloc, settings.mlflow_s3_endpoint_url, "MLflow artifacts", False))
    merged: dict[tuple[str, str | None], RequiredBucket] = {}
    for name, endpoint, purpose, versioned in wanted:
        known = merged.get((name, endpoint))
        if known is None:
            merged[(name, endpoint)] = RequiredBucket(name, endpoint, (purpose,), versioned)
        else:
            merged[(name, endpoint)] = RequiredBucket(
                name, endpoint, (*known.purposes, purpose), known.versioned or versioned
            )
    return list(merged.values())


def ensure_buckets(settings: PlatformSettings, env: Mapping[str, str] | None = None) -> list[str]:
    """Create what is missing; return the names created. Raises BucketUnavailable with a one-line reason."""
    created = []
    for bucket in required_buckets(settings, env):
        if _ensure(bucket, settings.s3_region):
            created.append(bucket.name)
    return created


def _client(endpoint_url: str | None, region: str):
    from dagster_aws.s3 import S3Resource

    # Two attempts: a wrong endpoint should stop start-up in seconds, not after boto's default back-off.
    return S3Resource(endpoint_url=endpoint_url, region_name=region, max_attempts=2).get_client()


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "")
    text = f"{code} ({message})" if code and message and message != code else code or message
    return text or " ".join(str(exc).split())


def _ensure(bucket: RequiredBucket, region: str) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    client = _client(bucket.endpoint_url, region)
    try:
        client.head_bucket(Bucket=bucket.name)
        exists = True
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code not in {"404", "NoSuchBucket", "NotFound"}:
            raise BucketUnavailable(f"{bucket.describe()} is not accessible: {_error_code(exc)}") from None
        exists = False
    except BotoCoreError as exc:
        raise BucketUnavailable(f"{bucket.describe()} cannot be reached: {_error_code(exc)}") from None
    try:
        if not exists:
            # Outside us-east-1, S3 wants the region spelled out again.
            location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            client.create_bucket(Bucket=bucket.name, **location)
        if bucket.versioned and client.get_bucket_versioning(Bucket=bucket.name).get("Status") != "Enabled":
            client.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
    except (ClientError, BotoCoreError) as exc:
        what = (
            "does not exist and could not be created" if not exists else "has no versioning and it could not be enabled"
        )
        raise BucketUnavailable(f"{bucket.describe()} {what}: {_error_code(exc)}") from None
    return not exists
