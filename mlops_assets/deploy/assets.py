"""Assets of the deploy system. Deployments are data (`deploy/deployments/<name>.json` in the object store) and
each one is a partition of the dynamic partitions `deployments`, so a new deployment needs no code:

  <demo>_model_file (the two demos only: train, upload, create their deployment as `mlops deploy` does)
  deploy/pinned_model[name] (+ the original's test suite as blocking checks) → deploy/deployment[name]
  (the serving snapshot, with its compiled ONNX copy, that the API and the web form load)
"""

import json
from dataclasses import asdict

import dagster as dg
from threadpoolctl import threadpool_limits

from mlops_assets.common.keys import key
from mlops_assets.common.runs import run_id_of
from mlops_assets.deploy.compiled import Compilation, compile_pipeline
from mlops_assets.deploy.config import Deployment, load_deployments
from mlops_assets.deploy.constants import (
    DEPLOYMENT_CODE_VERSION,
    MODEL_FILE_CODE_VERSION,
    PARTITIONS,
    PINNED_MODEL_CODE_VERSION,
    SYSTEM,
    snapshot_system,
)
from mlops_assets.deploy.deploying import build_record
from mlops_assets.deploy.models import ModelRefused, Pin, load_pinned, read_pin, resolve_registry_pin, write_pin
from mlops_assets.deploy.records import MLFLOW, DeploymentRecord, read_record, save_record, write_status
from mlops_assets.deploy.training import TITANIC_TRAIN, TrainedModel, train_paris, train_titanic
from mlops_assets.deploy.validation import DESCRIPTIONS, run_checks
from resources.data_source import DataSource
from resources.mlflow_registry import MlflowRegistry
from resources.model_bucket import ModelBucket, ModelBucketError, sha256_bytes
from resources.object_store import ObjectStore
from resources.snapshots import publish_snapshot

deployment_partitions = dg.DynamicPartitionsDefinition(name=PARTITIONS)
PINNED_MODEL_KEY = key(SYSTEM, "pinned_model")
DEPLOYMENT_KEY = key(SYSTEM, "deployment")
DEMOS = load_deployments()  # the packaged demo configs: inputs of the demo assets, not deployments themselves


def model_file_key(name: str) -> dg.AssetKey:
    return key(SYSTEM, f"{name}_model_file")


def require_record(store: ObjectStore, name: str) -> DeploymentRecord:
    record = read_record(store, name)
    if record is None:
        raise dg.Failure(f"deployment {name!r} does not exist (any more): create it with `mlops deploy {name} MODEL`")
    return record


def resolve_pin(record: DeploymentRecord, store: ObjectStore, registry: MlflowRegistry) -> Pin:
    """The model version a release of `record` checks: the bucket pin, or what the registry URI names now."""
    try:
        if record.source == MLFLOW:
            return resolve_registry_pin(registry, record.name, record.model["uri"])
    except ModelRefused as exc:
        raise dg.Failure(str(exc)) from None
    pin = read_pin(store, record.name)
    if pin is None:
        raise dg.Failure(
            f"no model version is pinned for deployment {record.name!r}: "
            f"`mlops deploy {record.name} MODEL_FILE` or `mlops pin {record.name} VERSION_ID`"
        )
    return pin


def release_token(record: DeploymentRecord, pin: Pin) -> str:
    """Changes whenever the deployment should be checked and published again (new config or new model)."""
    return f"{record.revision}#{pin.token}"


def load_or_fail(bucket: ModelBucket, pin: Pin, registry: MlflowRegistry | None = None):
    try:
        return load_pinned(bucket, pin, registry)
    except (ModelRefused, ModelBucketError) as exc:
        raise dg.Failure(str(exc)) from None


def pin_metadata(pin: Pin) -> dict[str, dg.MetadataValue]:
    return {
        "source": dg.MetadataValue.text(pin.source),
        "bucket": dg.MetadataValue.text(pin.bucket),
        "key": dg.MetadataValue.text(pin.key),
        "version_id": dg.MetadataValue.text(pin.version_id),
        "version_tag": dg.MetadataValue.text(pin.tag or ""),
        "sha256": dg.MetadataValue.text(pin.sha256),
        "pinned_at": dg.MetadataValue.text(pin.pinned_at),
        "pin_token": dg.MetadataValue.text(pin.token),
    }


def upload_demo_model(
    context: dg.AssetExecutionContext, demo: Deployment, trained: TrainedModel, bucket: ModelBucket, store: ObjectStore
) -> dg.MaterializeResult:
    """Upload as a new object version; create the deployment as `mlops deploy --form --example` would, but only
    when it does not exist yet (after that, the pin and the config are the user's)."""
    import skops.io as sio

    data = sio.dumps(trained.pipeline)
    bucket.create_bucket(bucket.default_bucket)
    version = bucket.upload(bucket.default_bucket, demo.model_key, data, tag=f"platform-{run_id_of(context)[:8]}")
    created = read_record(store, demo.name) is None
    if created:
        spec = {
            "description": demo.description,
            "default": demo.default,
            "prediction": asdict(demo.prediction),
            "raw_example": demo.raw_example,
        }
        record = build_record(
            demo.name,
            trained.pipeline,
            {"source": "bucket", "bucket": version.bucket, "key": version.key},
            form=demo.form_config,
            example=demo.raw_example,
            spec=spec,
        )
        write_pin(store, demo.name, version, sha256_bytes(data))
        save_record(store, record)
    context.log.info(
        "uploaded %s version %s (%s)",
        version.key,
        version.version_id,
        "deployment created" if created else "not pinned: pin it with `mlops pin`",
    )
    metadata = {
        "bucket": dg.MetadataValue.text(version.bucket),
        "key": dg.MetadataValue.text(version.key),
        "version_id": dg.MetadataValue.text(version.version_id),
        "version_tag": dg.MetadataValue.text(version.tag or ""),
        "sha256": dg.MetadataValue.text(version.sha256 or ""),
        "bytes": dg.MetadataValue.int(version.size),
        "deployment_created": dg.MetadataValue.bool(created),
        "training_rows": dg.MetadataValue.int(trained.rows),
        "training_data": dg.MetadataValue.text(trained.data_note),
        **{name: dg.MetadataValue.float(value) for name, value in trained.metrics.items()},
        **trained.source_metadata,
    }
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion((version.sha256 or "")[:16]))


@dg.asset(
    key=model_file_key("titanic_survival"),
    group_name=SYSTEM,
    kinds={"scikit-learn", "skops"},
    code_version=MODEL_FILE_CODE_VERSION,
    description="The Titanic survival Pipeline trained on the real Kaggle train.csv (raw columns), uploaded to "
    "the model bucket as a new tagged object version; the first time, the deployment is created.",
)
def titanic_survival_model_file(
    context: dg.AssetExecutionContext,
    data_source: DataSource,
    model_bucket: dg.ResourceParam[ModelBucket],
    object_store: ObjectStore,
) -> dg.MaterializeResult:
    import pandas as pd

    fetched = data_source.fetch(TITANIC_TRAIN)
    with threadpool_limits(1):  # two shared cores: OpenMP threads only contend
        trained = train_titanic(pd.read_csv(fetched.path))
    trained.source_metadata = fetched.metadata()
    return upload_demo_model(context, DEMOS["titanic_survival"], trained, model_bucket, object_store)


@dg.asset(
    key=model_file_key("paris_airbnb_price"),
    group_name=SYSTEM,
    kinds={"scikit-learn", "skops"},
    code_version=MODEL_FILE_CODE_VERSION,
    description="The original project's Paris Airbnb price regressor, trained on GENERATED listings (its real "
    "training data is not public), uploaded to the model bucket as a new tagged object version.",
)
def paris_airbnb_price_model_file(
    context: dg.AssetExecutionContext, model_bucket: dg.ResourceParam[ModelBucket], object_store: ObjectStore
) -> dg.MaterializeResult:
    with threadpool_limits(1):
        trained = train_paris()
    trained.source_metadata = {"generator_seed": dg.MetadataValue.int(trained.source_metadata["generator_seed"])}
    return upload_demo_model(context, DEMOS["paris_airbnb_price"], trained, model_bucket, object_store)


DEMO_MODEL_FILES = {
    "titanic_survival": titanic_survival_model_file,
    "paris_airbnb_price": paris_airbnb_price_model_file,
}
CHECK_SPECS = [
    dg.AssetCheckSpec(name, asset=PINNED_MODEL_KEY, blocking=True, description=text)
    for name, text in DESCRIPTIONS.items()
]


@dg.asset(
    key=PINNED_MODEL_KEY,
    group_name=SYSTEM,
    partitions_def=deployment_partitions,
    kinds={"scikit-learn"},
    code_version=PINNED_MODEL_CODE_VERSION,
    check_specs=CHECK_SPECS,
    description="The model version a deployment serves (its bucket pin, verified against the SHA-256 "
    "recorded at upload, or the registry version its URI names now), with the original's test "
    "suite as blocking checks: a failure keeps the previous version served.",
)
def pinned_model(
    context: dg.AssetExecutionContext,
    object_store: ObjectStore,
    mlflow: MlflowRegistry,
    model_bucket: dg.ResourceParam[ModelBucket],
) -> dg.MaterializeResult:
    name = context.partition_key
    record = require_record(object_store, name)
    pin = resolve_pin(record, object_store, mlflow)
    model = load_or_fail(model_bucket, pin, mlflow)
    with threadpool_limits(1):
        outcomes = run_checks(record.deployment, model)
    token = release_token(record, pin)
    write_status(
        object_store,
        name,
        {
            "release": token,
            "version_id": pin.version_id,
            "key": pin.key,
            "checks": {o.name: {"passed": o.passed, "description": o.description} for o in outcomes},
            "dagster_run_id": run_id_of(context),
        },
    )
    checks = [
        dg.AssetCheckResult(
            check_name=o.name,
            passed=o.passed,
            description=o.description,
            metadata={k: v for k, v in o.metadata.items() if v is not None},
        )
        for o in outcomes
    ]
    steps = [f"{step}: {type(est).__name__}" for step, est in getattr(model, "steps", [])]
    metadata = {
        **pin_metadata(pin),
        "model_class": dg.MetadataValue.text(type(model).__name__),
        "pipeline_steps": dg.MetadataValue.md("\n".join(f"- {s}" for s in steps) or "(not a Pipeline)"),
        "release": dg.MetadataValue.text(token),
        "checks_passed": dg.MetadataValue.bool(all(o.passed for o in outcomes)),
        "pin_json": dg.MetadataValue.json(pin.to_json()),
        "record_json": dg.MetadataValue.json(record.to_json()),
    }
    return dg.MaterializeResult(metadata=metadata, check_results=checks, data_version=dg.DataVersion(token))


def deployment_files(
    deployment: Deployment,
    pin: Pin,
    run_id: str,
    compilation: Compilation | None = None,
    record: DeploymentRecord | None = None,
) -> dict[str, bytes]:
    """What serving loads: the pin to serve, how to turn predict() into the shown number, the form and schema,
    the deployment's config, and the compiled copy of the Pipeline when it passed its probes."""
    compiled = compilation.record() if compilation is not None else None
    config = (
        record.to_json()
        if record is not None
        else {
            "name": deployment.name,
            "form": deployment.form_config,
            "model": {"source": pin.source},
            "spec": {
                "prediction": asdict(deployment.prediction),
                "raw_example": deployment.raw_example,
                "description": deployment.description,
                "default": deployment.default,
            },
        }
    )
    document = {
        "name": deployment.name,
        "pin": pin.to_json(),
        "prediction": asdict(deployment.prediction),
        "dagster_run_id": run_id,
        "compiled": compiled,
        "config": config,
    }
    files = {
        "deployment.json": json.dumps(document, ensure_ascii=False).encode(),
        "form.json": json.dumps(deployment.form_config, ensure_ascii=False).encode(),
        "schema.json": json.dumps(deployment.schema.model_json_schema(), ensure_ascii=False).encode(),
    }
    if compiled is not None:
        files[compiled["file"]] = compilation.onnx
    return files


def compilation_metadata(compilation: Compilation) -> dict[str, dg.MetadataValue]:
    metadata = {
        "serving_runtime": dg.MetadataValue.text(compilation.runtime),
        "compilation": dg.MetadataValue.text(compilation.note),
        "compiled_probe_rows": dg.MetadataValue.int(compilation.probe_rows),
    }
    if compilation.max_relative_error is not None:
        metadata["compiled_max_relative_error"] = dg.MetadataValue.float(compilation.max_relative_error)
    return metadata


def checked_release(instance: dg.DagsterInstance, name: str) -> tuple[Pin, DeploymentRecord] | None:
    """The pin and config the latest pinned_model materialization of `name` checked, if all checks passed."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=PINNED_MODEL_KEY, asset_partitions=[name]), limit=1
    ).records
    if not records:
        return None
    metadata = records[0].asset_materialization.metadata
    if not getattr(metadata.get("checks_passed"), "value", False):
        return None
    return Pin(**metadata["pin_json"].value), DeploymentRecord.from_json(metadata["record_json"].value)


@dg.asset(
    key=DEPLOYMENT_KEY,
    group_name=SYSTEM,
    deps=[PINNED_MODEL_KEY],
    partitions_def=deployment_partitions,
    kinds={"fastapi"},
    code_version=DEPLOYMENT_CODE_VERSION,
    description="The live deployment: the checked model version, validation schema, web form and compiled "
    "ONNX copy published for the serving API (/api/{name}/predict, /deploy/{name}).",
)
def deployment(
    context: dg.AssetExecutionContext,
    object_store: ObjectStore,
    mlflow: MlflowRegistry,
    model_bucket: dg.ResourceParam[ModelBucket],
) -> dg.MaterializeResult:
    name = context.partition_key
    checked = checked_release(context.instance, name)
    if checked is None:
        # Never publish a version whose checks did not all pass: serving keeps the last good one.
        raise dg.Failure(f"{name!r} has no checked model version: materialize deploy/pinned_model for it first")
    pin, record = checked  # exactly what was checked, even if the pin or the alias moved since
    if read_record(object_store, name) is None:
        raise dg.Failure(f"deployment {name!r} was removed (`mlops undeploy`); nothing to publish")
    current = record.deployment
    with threadpool_limits(1):
        compilation = compile_pipeline(current, load_or_fail(model_bucket, pin, mlflow))
    context.log.info("compiled copy for serving: %s", compilation.note)
    files = deployment_files(current, pin, run_id_of(context), compilation, record)
    pointer = publish_snapshot(
        object_store,
        snapshot_system(name),
        files,
        manifest={"version_id": pin.version_id, "tag": pin.tag, "release": release_token(record, pin)},
    )
    table = "\n".join(
        f"| {f.name} | {f.type} | {f.dtype} | {f.label} | {'yes' if f.required else 'no'} |" for f in current.fields
    )
    return dg.MaterializeResult(
        metadata={
            **pin_metadata(pin),
            **compilation_metadata(compilation),
            "release": dg.MetadataValue.text(release_token(record, pin)),
            "snapshot_id": dg.MetadataValue.text(pointer["snapshot_id"]),
            "schema_fields": dg.MetadataValue.md(
                "| field | input | type | label | required |\n|---|---|---|---|---|\n" + table
            ),
            "form_page": dg.MetadataValue.text(f"/deploy/{name}/form"),
            "predict_endpoint": dg.MetadataValue.text(f"POST /api/{name}/predict"),
        },
        data_version=dg.DataVersion(release_token(record, pin)),
    )


ASSETS = [*DEMO_MODEL_FILES.values(), pinned_model, deployment]
