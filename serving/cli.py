"""`mlops`: the model bucket and deployment CLI (the original project's commands, plus `pin`).

Works against the local bucket store under MLOPS_HOME by default and against S3 when MLOPS_OBJECT_STORE=s3
(MLOPS_S3_ENDPOINT_URL for MinIO/moto). Problems are printed as one line on stderr with exit code 1.
"""

from __future__ import annotations

import functools
from pathlib import Path

import typer

from mlops_assets.deploy.config import load_deployments
from mlops_assets.deploy.models import pin_version, read_pin
from resources import build_object_store
from resources.model_bucket import ModelBucketError, build_model_bucket
from resources.settings import PlatformSettings

app = typer.Typer(help="Versioned model buckets and deployments of scikit-learn Pipelines.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def friendly(command):
    """Turn every expected failure (bucket, file, version, S3 connection, settings) into one clear line."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except (ModelBucketError, ValueError, OSError) as exc:
            fail(str(exc))
        except Exception as exc:  # botocore's connection and credential errors, named without a traceback
            if type(exc).__module__.startswith(("botocore", "boto3")):
                fail(f"S3: {exc}")
            raise

    return wrapper


def bucket_store():
    return build_model_bucket(PlatformSettings.from_env())


@app.command("create-bucket")
@friendly
def create_bucket(name: str = typer.Argument(..., help="Bucket name (S3 naming rules)")) -> None:
    """Create a bucket with versioning on (enable versioning if it already exists)."""
    created = bucket_store().create_bucket(name)
    typer.echo(f"{'created' if created else 'exists'}: bucket {name} (versioning enabled)")


@app.command("delete-bucket")
@friendly
def delete_bucket(name: str, force: bool = typer.Option(False, "--force", help="Delete every object version too")) -> None:
    """Delete a bucket; a non-empty one needs --force."""
    deleted = bucket_store().delete_bucket(name, force=force)
    typer.echo(f"deleted: bucket {name} ({deleted} object version(s))")


@app.command("upload")
@friendly
def upload(name: str = typer.Argument(..., help="Bucket"),
           model: Path = typer.Argument(..., help="Model file (.skops recommended; .pkl/.joblib trusted bucket only)"),
           tag: str = typer.Option(..., "--tag", help="Version tag, e.g. 1.0")) -> None:
    """Upload MODEL as a new object version (key = file name) tagged Version=TAG, recording its SHA-256."""
    version = bucket_store().upload_file(name, model, tag)
    typer.echo(f"uploaded: {version.key} version_id={version.version_id} tag={version.tag} sha256={version.sha256}")


@app.command("list-objects")
@friendly
def list_objects(name: str = typer.Argument(..., help="Bucket")) -> None:
    """Every object version: key, version id, is-latest, last-modified, tags."""
    versions = bucket_store().list_versions(name)
    if not versions:
        typer.echo(f"bucket {name} is empty")
        return
    typer.echo("\t".join(["key", "version_id", "is_latest", "last_modified", "tags"]))
    for v in versions:
        tags = ",".join(f"{k}={val}" for k, val in sorted(v.tags.items()))
        typer.echo("\t".join([v.key, v.version_id, str(v.is_latest).lower(), v.last_modified.isoformat(), tags]))


@app.command("pin")
@friendly
def pin(deployment: str = typer.Argument(..., help="Deployment name (a folder of deployment configs)"),
        version_id: str = typer.Argument(..., help="Object version id (see list-objects)"),
        bucket: str | None = typer.Option(None, "--bucket", help="Bucket holding the version [default: MLOPS_MODEL_BUCKET]")) -> None:
    """Pin the object version a deployment serves; Dagster's pin sensor checks and publishes it."""
    deployments = load_deployments()
    if deployment not in deployments:
        fail(f"deployment {deployment!r} not found; known: {', '.join(deployments)}")
    settings = PlatformSettings.from_env()
    models = build_model_bucket(settings)
    record = pin_version(build_object_store(settings), models, deployment, bucket or models.default_bucket, version_id)
    typer.echo(f"pinned: {deployment} -> {record.bucket}/{record.key} version_id={record.version_id} "
               f"tag={record.tag} sha256={record.sha256}")


app.command("update-lambda", help="Alias of `pin` (the original project's name for it).")(pin)


@app.command("pins")
@friendly
def pins() -> None:
    """Which version every deployment is pinned to."""
    store = build_object_store(PlatformSettings.from_env())
    for name in load_deployments():
        record = read_pin(store, name)
        typer.echo(f"{name}\t" + (f"{record.bucket}/{record.key}\t{record.version_id}\t{record.tag}" if record else "(not pinned)"))


if __name__ == "__main__":
    app()
