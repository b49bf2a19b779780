"""`mlops`: the model bucket and deployment CLI (the original project's commands, plus deploy, undeploy, pin).

Works against the local bucket store under MLOPS_HOME by default and against S3 when MLOPS_OBJECT_STORE=s3
(MLOPS_S3_ENDPOINT_URL for MinIO/moto). It only writes the object store: Dagster's deploy sensor picks up what
changed, so no Dagster instance is needed here. Problems are printed as one line on stderr with exit code 1.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from pathlib import Path

import typer

from mlops_assets.deploy.config import ConfigError, read_yaml
from mlops_assets.deploy.constants import snapshot_system
from mlops_assets.deploy.models import ModelRefused, deserialize, pin_key, pin_version, read_pin
from mlops_assets.deploy.records import (
    MLFLOW,
    list_records,
    read_record,
    read_status,
    record_key,
    save_record,
    status_key,
)
from resources import build_object_store
from resources.model_bucket import ModelBucketError, build_model_bucket
from resources.settings import PlatformSettings
from resources.snapshots import current_snapshot, pointer_key

app = typer.Typer(
    help="Versioned model buckets and deployments of scikit-learn Pipelines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


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
        except (ModelBucketError, ModelRefused, ValueError, OSError) as exc:
            fail(str(exc))
        except Exception as exc:  # botocore's and MLflow's connection and credential errors, without a traceback
            if type(exc).__module__.startswith(("botocore", "boto3")):
                fail(f"S3: {exc}")
            if type(exc).__module__.startswith("mlflow"):
                fail(f"MLflow registry: {str(exc).splitlines()[0][:300]}")
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
def delete_bucket(
    name: str, force: bool = typer.Option(False, "--force", help="Delete every object version too")
) -> None:
    """Delete a bucket; a non-empty one needs --force."""
    deleted = bucket_store().delete_bucket(name, force=force)
    typer.echo(f"deleted: bucket {name} ({deleted} object version(s))")


@app.command("upload")
@friendly
def upload(
    name: str = typer.Argument(..., help="Bucket"),
    model: Path = typer.Argument(..., help="Model file (.skops recommended; .pkl/.joblib trusted bucket only)"),
    tag: str = typer.Option(..., "--tag", help="Version tag, e.g. 1.0"),
) -> None:
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


def load_json(path: Path | None, what: str) -> dict | None:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{what} {str(path)!r} is not readable JSON: {exc}") from None


@app.command("deploy")
@friendly
def deploy(
    name: str = typer.Argument(..., help="Deployment name (a Python identifier): /api/NAME/predict"),
    model: str = typer.Argument(
        ...,
        help="A Pipeline file (.skops, .pkl, .joblib) or a registry URI such as models:/Pistachio_Classifier@champion",
    ),
    form: Path | None = typer.Option(
        None, "--form", help="form.yml (title, units, home, schema.fields); default: inferred from the Pipeline"
    ),
    example: Path | None = typer.Option(None, "--example", help="JSON object of one raw input row"),
    tag: str | None = typer.Option(None, "--tag", help="Version tag of the upload [default: a timestamp]"),
    proba_class: str | None = typer.Option(
        None, "--proba-class", help="Serve this class's probability (%) instead of predict()"
    ),
) -> None:
    """Create or update a deployment: check the model on the example, upload it, store the deployment's config."""
    from mlops_assets.deploy.deploying import build_record
    from mlops_assets.deploy.models import resolve_registry_pin, write_pin
    from resources import build_registry

    settings = PlatformSettings.from_env()
    store = build_object_store(settings)
    form_doc = read_yaml(form) if form is not None else None
    example_doc = load_json(example, "example")
    existing = read_record(store, name)
    spec = {k: v for k, v in (existing.spec if existing else {}).items() if k in {"description", "default"}}
    if model.startswith("models:/"):
        registry = build_registry(settings)
        pin = resolve_registry_pin(registry, name, model)
        loaded = registry.load_sklearn(pin.key)
        record = build_record(name, loaded, {"source": MLFLOW, "uri": model}, form_doc, example_doc, spec, proba_class)
        save_record(store, record)
        typer.echo(
            f"deployed: {name} -> {model} (now version {pin.version_id}); Dagster's deploy sensor checks "
            f"and publishes it, and follows the alias: POST /api/{name}/predict, form at /deploy/{name}/form"
        )
        return
    path = Path(model)
    if not path.is_file():
        fail(f"model file {model!r} not found (or use a registry URI models:/NAME@ALIAS)")
    data = path.read_bytes()
    try:
        loaded = deserialize(data, path.name, from_trusted_bucket=True)  # the user's own file, on their machine
    except ModelRefused:
        raise
    except Exception as exc:  # not a model file at all, or a pickle of classes this environment lacks
        fail(f"{path.name} could not be loaded as a model: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    bucket = build_model_bucket(settings)
    record = build_record(
        name,
        loaded,
        {"source": "bucket", "bucket": bucket.default_bucket, "key": path.name},
        form_doc,
        example_doc,
        spec,
        proba_class,
    )
    bucket.create_bucket(bucket.default_bucket)
    version = bucket.upload(
        bucket.default_bucket, path.name, data, tag or datetime.now(UTC).strftime("deploy-%Y%m%dT%H%M%SZ")
    )
    write_pin(store, name, version, version.sha256)
    save_record(store, record)
    typer.echo(
        f"deployed: {name} -> {version.bucket}/{version.key} version_id={version.version_id} "
        f"tag={version.tag} ({record.form_source} form); Dagster's deploy sensor checks and publishes it: "
        f"POST /api/{name}/predict, form at /deploy/{name}/form"
    )


@app.command("undeploy")
@friendly
def undeploy(name: str = typer.Argument(..., help="Deployment name")) -> None:
    """Stop serving a deployment and forget its config and pin (uploaded model versions stay in the bucket)."""
    store = build_object_store(PlatformSettings.from_env())
    if read_record(store, name) is None:
        fail(f"deployment {name!r} not found; known: {', '.join(list_records(store)) or 'none'}")
    # The config last: until it is gone the deployment is still listed, and it goes with its serving pointer.
    for key in (pointer_key(snapshot_system(name)), pin_key(name), status_key(name), record_key(name)):
        store.delete(key)
    typer.echo(f"undeployed: {name} (the API drops its routes within a poll; the sensor removes its partition)")


@app.command("deployments")
@friendly
def deployments() -> None:
    """Every deployment: the model it follows, the version it serves and the outcome of its latest checks."""
    store = build_object_store(PlatformSettings.from_env())
    records = list_records(store)
    if not records:
        typer.echo("no deployments (create one with `mlops deploy NAME MODEL`)")
        return
    typer.echo("\t".join(["name", "model", "pinned", "served", "checks"]))
    for name, record in records.items():
        pin = read_pin(store, name) if record.source != MLFLOW else None
        pointer = current_snapshot(store, snapshot_system(name))
        served = (pointer or {}).get("manifest", {}).get("version_id") or "-"
        status = read_status(store, name)
        if status is None:
            checks = "pending"
        else:
            failed = [
                f"{check}: {outcome['description']}"
                for check, outcome in status["checks"].items()
                if not outcome["passed"]
            ]
            checks = (
                f"failed ({'; '.join(failed)})"
                if failed
                else f"passed ({len(status['checks'])}/{len(status['checks'])})"
            )
            checks += f" on version {status['version_id']}"
        typer.echo("\t".join([name, record.describe_model(), pin.version_id if pin else "-", served, checks]))


@app.command("pin")
@friendly
def pin(
    deployment: str = typer.Argument(..., help="Deployment name (see `mlops deployments`)"),
    version_id: str = typer.Argument(..., help="Object version id (see list-objects)"),
    bucket: str | None = typer.Option(
        None, "--bucket", help="Bucket holding the version [default: MLOPS_MODEL_BUCKET]"
    ),
) -> None:
    """Pin the object version a deployment serves; Dagster's deploy sensor checks and publishes it."""
    settings = PlatformSettings.from_env()
    store = build_object_store(settings)
    record = read_record(store, deployment)
    if record is None:
        fail(
            f"deployment {deployment!r} not found; known: {', '.join(list_records(store)) or 'none'} "
            f"(create it with `mlops deploy {deployment} MODEL_FILE`)"
        )
    if record.source == MLFLOW:
        fail(f"deployment {deployment!r} follows {record.model['uri']}; move the registry alias instead of pinning")
    models = build_model_bucket(settings)
    record_pin = pin_version(store, models, deployment, bucket or models.default_bucket, version_id)
    typer.echo(
        f"pinned: {deployment} -> {record_pin.bucket}/{record_pin.key} version_id={record_pin.version_id} "
        f"tag={record_pin.tag} sha256={record_pin.sha256}"
    )


app.command("update-lambda", help="Alias of `pin` (the original project's name for it).")(pin)


@app.command("pins")
@friendly
def pins() -> None:
    """Which version every deployment is pinned to."""
    store = build_object_store(PlatformSettings.from_env())
    for name, record in list_records(store).items():
        if record.source == MLFLOW:
            typer.echo(f"{name}\t{record.model['uri']}\t(follows the registry)")
            continue
        found = read_pin(store, name)
        typer.echo(
            f"{name}\t" + (f"{found.bucket}/{found.key}\t{found.version_id}\t{found.tag}" if found else "(not pinned)")
        )


if __name__ == "__main__":
    app()
