"""Assets of the deploy system, one chain per deployment config:

  <name>_model_file (demo deployments only) → <name>_pinned_model (+ the original's test suite as checks)
  → <name>_deployment (the serving snapshot the API and the web form load)
"""


import json
from dataclasses import asdict

import dagster as dg
import pandas as pd
from threadpoolctl import threadpool_limits

from mlops_assets.deploy.compiled import Compilation, compile_pipeline
from mlops_assets.deploy.config import Deployment, load_deployments
from mlops_assets.deploy.constants import (DEPLOYMENT_CODE_VERSION, GROUP, KEY_PREFIX, MODEL_FILE_CODE_VERSION,
                                           PINNED_MODEL_CODE_VERSION, snapshot_system)
from mlops_assets.deploy.models import ModelRefused, Pin, load_pinned, read_pin, write_pin
from mlops_assets.deploy.training import TITANIC_TRAIN, TrainedModel, train_paris, train_titanic
from resources.data_source import DataSource
from resources.model_bucket import ModelBucket, ModelBucketError, sha256_bytes
from resources.object_store import ObjectStore
from resources.snapshots import publish_snapshot


def model_file_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([*KEY_PREFIX, f"{name}_model_file"])


def pinned_model_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([*KEY_PREFIX, f"{name}_pinned_model"])


def deployment_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([*KEY_PREFIX, f"{name}_deployment"])


def require_pin(store: ObjectStore, name: str) -> Pin:
    pin = read_pin(store, name)
    if pin is None:
        raise dg.Failure(f"no model version is pinned for deployment {name!r}: upload a Pipeline with "
                         f"`mlops upload BUCKET FILE --tag TAG`, then `mlops pin {name} VERSION_ID`")
    return pin


def load_or_fail(bucket: ModelBucket, pin: Pin):
    try:
        return load_pinned(bucket, pin)
    except (ModelRefused, ModelBucketError) as exc:
        raise dg.Failure(str(exc)) from None


def pin_metadata(pin: Pin) -> dict[str, dg.MetadataValue]:
    return {
        "bucket": dg.MetadataValue.text(pin.bucket),
        "key": dg.MetadataValue.text(pin.key),
        "version_id": dg.MetadataValue.text(pin.version_id),
        "version_tag": dg.MetadataValue.text(pin.tag or ""),
        "sha256": dg.MetadataValue.text(pin.sha256),
        "pinned_at": dg.MetadataValue.text(pin.pinned_at),
        "pin_token": dg.MetadataValue.text(pin.token),
    }


def upload_demo_model(context: dg.AssetExecutionContext, deployment: Deployment, trained: TrainedModel,
                      bucket: ModelBucket, store: ObjectStore) -> dg.MaterializeResult:
    """Upload as a new object version; pin it only when the deployment has no pin yet (users own the pin)."""
    import skops.io as sio

    data = sio.dumps(trained.pipeline)
    bucket.create_bucket(bucket.default_bucket)
    version = bucket.upload(bucket.default_bucket, deployment.model_key, data,
                            tag=f"platform-{context.run_id[:8]}")
    pinned = read_pin(store, deployment.name) is None
    if pinned:
        write_pin(store, deployment.name, version, sha256_bytes(data))
    context.log.info("uploaded %s version %s (%s)", version.key, version.version_id,
                     "pinned: first deployment" if pinned else "not pinned: pin it with `mlops pin`")
    metadata = {
        "bucket": dg.MetadataValue.text(version.bucket),
        "key": dg.MetadataValue.text(version.key),
        "version_id": dg.MetadataValue.text(version.version_id),
        "version_tag": dg.MetadataValue.text(version.tag or ""),
        "sha256": dg.MetadataValue.text(version.sha256 or ""),
        "bytes": dg.MetadataValue.int(version.size),
        "pinned_now": dg.MetadataValue.bool(pinned),
        "training_rows": dg.MetadataValue.int(trained.rows),
        "training_data": dg.MetadataValue.text(trained.data_note),
        **{name: dg.MetadataValue.float(value) for name, value in trained.metrics.items()},
        **trained.source_metadata,
    }
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion((version.sha256 or "")[:16]))


DEPLOYMENTS = load_deployments()


@dg.asset(
    key=model_file_key("titanic_survival"), group_name=GROUP, kinds={"scikit-learn", "skops"},
    code_version=MODEL_FILE_CODE_VERSION,
    description="The Titanic survival Pipeline trained on the real Kaggle train.csv (raw columns), uploaded to "
                "the model bucket as a new tagged object version, as a user would with `mlops upload`.",
)
def titanic_survival_model_file(context: dg.AssetExecutionContext, data_source: DataSource,
                                model_bucket: dg.ResourceParam[ModelBucket],
                                object_store: ObjectStore) -> dg.MaterializeResult:
    fetched = data_source.fetch(TITANIC_TRAIN)
    with threadpool_limits(1):  # two shared cores: OpenMP threads only contend
        trained = train_titanic(pd.read_csv(fetched.path))
    trained.source_metadata = fetched.metadata()
    return upload_demo_model(context, DEPLOYMENTS["titanic_survival"], trained, model_bucket, object_store)


@dg.asset(
    key=model_file_key("paris_airbnb_price"), group_name=GROUP, kinds={"scikit-learn", "skops"},
    code_version=MODEL_FILE_CODE_VERSION,
    description="The original project's Paris Airbnb price regressor, trained on GENERATED listings (its real "
                "training data is not public), uploaded to the model bucket as a new tagged object version.",
)
def paris_airbnb_price_model_file(context: dg.AssetExecutionContext, model_bucket: dg.ResourceParam[ModelBucket],
                                  object_store: ObjectStore) -> dg.MaterializeResult:
    with threadpool_limits(1):
        trained = train_paris()
    trained.source_metadata = {"generator_seed": dg.MetadataValue.int(trained.source_metadata["generator_seed"])}
    return upload_demo_model(context, DEPLOYMENTS["paris_airbnb_price"], trained, model_bucket, object_store)


DEMO_MODEL_FILES = {"titanic_survival": titanic_survival_model_file,
                    "paris_airbnb_price": paris_airbnb_price_model_file}


def build_pinned_model(deployment: Deployment) -> dg.AssetsDefinition:
    name = deployment.name
    deps = [model_file_key(name)] if name in DEMO_MODEL_FILES else []

    @dg.asset(key=pinned_model_key(name), group_name=GROUP, deps=deps, kinds={"scikit-learn"},
              code_version=PINNED_MODEL_CODE_VERSION,
              description=f"The object version pinned for '{name}' ({deployment.title}), read from the model "
                          "bucket and loaded only after its SHA-256 matches the digest recorded at upload.")
    def pinned_model(context: dg.AssetExecutionContext, object_store: ObjectStore,
                     model_bucket: dg.ResourceParam[ModelBucket]) -> dg.MaterializeResult:
        pin = require_pin(object_store, name)
        model = load_or_fail(model_bucket, pin)
        steps = [f"{step}: {type(est).__name__}" for step, est in getattr(model, "steps", [])]
        metadata = {**pin_metadata(pin), "model_class": dg.MetadataValue.text(type(model).__name__),
                    "pipeline_steps": dg.MetadataValue.md("\n".join(f"- {s}" for s in steps) or "(not a Pipeline)")}
        return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(pin.token))

    return pinned_model


def deployment_files(deployment: Deployment, pin: Pin, run_id: str,
                     compilation: Compilation | None = None) -> dict[str, bytes]:
    """What serving loads: the pin to serve, how to turn predict() into the shown number, the form and schema,
    and the compiled copy of the Pipeline when it passed its probes."""
    compiled = compilation.record() if compilation is not None else None
    record = {"name": deployment.name, "pin": pin.to_json(), "prediction": asdict(deployment.prediction),
              "dagster_run_id": run_id, "compiled": compiled}
    files = {
        "deployment.json": json.dumps(record).encode(),
        "form.json": json.dumps(deployment.form_config, ensure_ascii=False).encode(),
        "schema.json": json.dumps(deployment.schema.model_json_schema(), ensure_ascii=False).encode(),
    }
    if compiled is not None:
        files[compiled["file"]] = compilation.onnx
    return files


def compilation_metadata(compilation: Compilation) -> dict[str, dg.MetadataValue]:
    metadata = {"serving_runtime": dg.MetadataValue.text(compilation.runtime),
                "compilation": dg.MetadataValue.text(compilation.note),
                "compiled_probe_rows": dg.MetadataValue.int(compilation.probe_rows)}
    if compilation.max_relative_error is not None:
        metadata["compiled_max_relative_error"] = dg.MetadataValue.float(compilation.max_relative_error)
    return metadata


def build_deployment(deployment: Deployment) -> dg.AssetsDefinition:
    name = deployment.name

    @dg.asset(key=deployment_key(name), group_name=GROUP, deps=[pinned_model_key(name)], kinds={"fastapi"},
              code_version=DEPLOYMENT_CODE_VERSION,
              description=f"The live '{name}' deployment: the checked pin, validation schema and web form "
                          f"published for the serving API (/api/{name}/predict, /deploy/{name}).")
    def deployment_snapshot(context: dg.AssetExecutionContext, object_store: ObjectStore,
                            model_bucket: dg.ResourceParam[ModelBucket]) -> dg.MaterializeResult:
        pin = require_pin(object_store, name)
        checked = context.instance.get_latest_materialization_event(pinned_model_key(name))
        checked_token = None
        if checked is not None and checked.asset_materialization is not None:
            token = checked.asset_materialization.metadata.get("pin_token")
            checked_token = getattr(token, "value", None)
        if checked_token != pin.token:
            # The pin moved after the model was checked: never publish an unchecked version.
            raise dg.Failure(f"the pin of {name!r} ({pin.token}) is not the checked one ({checked_token}); "
                             "materialize the pinned model first (the pin sensor does it)")
        with threadpool_limits(1):
            compilation = compile_pipeline(deployment, load_or_fail(model_bucket, pin))
        context.log.info("compiled copy for serving: %s", compilation.note)
        files = deployment_files(deployment, pin, context.run_id, compilation)
        pointer = publish_snapshot(object_store, snapshot_system(name), files,
                                   manifest={"version_id": pin.version_id, "tag": pin.tag})
        table = "\n".join(f"| {f.name} | {f.type} | {f.dtype} | {f.label} | {'yes' if f.required else 'no'} |"
                          for f in deployment.fields)
        return dg.MaterializeResult(metadata={
            **pin_metadata(pin),
            **compilation_metadata(compilation),
            "snapshot_id": dg.MetadataValue.text(pointer["snapshot_id"]),
            "schema_fields": dg.MetadataValue.md("| field | input | type | label | required |\n|---|---|---|---|---|\n" + table),
            "form_page": dg.MetadataValue.text(f"/deploy/{name}/form"),
            "predict_endpoint": dg.MetadataValue.text(f"POST /api/{name}/predict"),
        }, data_version=dg.DataVersion(pin.token))

    return deployment_snapshot


PINNED_MODELS = {name: build_pinned_model(d) for name, d in DEPLOYMENTS.items()}
DEPLOYMENT_ASSETS = {name: build_deployment(d) for name, d in DEPLOYMENTS.items()}
ASSETS = [*DEMO_MODEL_FILES.values(), *PINNED_MODELS.values(), *DEPLOYMENT_ASSETS.values()]
