"""Scones Unlimited data and model: CIFAR-100 rows → labelled PNGs in the object store → the classifier."""

import io
import time
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common.constants import DAGSTER_RUN_TAG, DUCKDB_POOL, PROMOTION_POOL
from mlops_assets.common.images import image_metadata
from mlops_assets.common.keys import key, placement
from mlops_assets.common.promotion import candidate_of_run
from mlops_assets.common.promotion import promotion_gate as gate
from mlops_assets.common.runs import run_id_of
from mlops_assets.common.tables import table_metadata
from mlops_assets.common.training import (
    FINGERPRINT_TAG,
    SKIPPED,
    TRAINED,
    asset_code_version,
    content_version,
    fingerprint,
    registered_version,
    skipped_result,
)
from mlops_assets.scones.cifar import (
    SPLITS,
    CifarSplit,
    check_label_names,
    fine_label_names,
    manifest_text,
    png_bytes,
    select_split,
)
from mlops_assets.scones.constants import (
    CHARTS_PREFIX,
    CLASS_NAMES,
    DATASET_PREFIX,
    DEFAULT_THRESHOLD,
    EXPERIMENT,
    FINE_LABEL_TO_CLASS,
    MODEL_NAME,
    ORIGINAL_BEST_ACCURACY,
    ORIGINAL_FINAL_ACCURACY,
    SYSTEM,
)
from mlops_assets.scones.evaluation import confusion_matrix_png, evaluate
from mlops_assets.scones.sources import read_cifar_members
from resources.data_source import DataSource
from resources.mlflow_registry import MlflowRegistry
from resources.object_store import ObjectStore

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

COMMON = placement(SYSTEM)
MODEL_KEY = key(SYSTEM, "image_classifier")
# skops loads only reviewed types: the feature transformer is ours; everything else is plain scikit-learn.
TRUSTED_TYPES = ["mlops_assets.scones.features.PatchDictionaryFeatures"]
CONFUSION_MATRIX_KEY = f"{CHARTS_PREFIX}/confusion_matrix.png"
CLASS_TO_FINE_LABEL = {index: fine for fine, index in FINE_LABEL_TO_CLASS.items()}


@dg.asset(**COMMON, kinds={"python", "duckdb"}, code_version="1", pool=DUCKDB_POOL)
def cifar100_archive(context: dg.AssetExecutionContext, data_source: DataSource):
    """The bicycle and motorcycle rows of CIFAR-100, read from the original python pickles, pixels untouched.

    One row per image: split, row index in the pickle read, CIFAR fine label, class (0 bicycle, 1 motorcycle),
    file name and the 3072 raw pixel bytes (R, G, B planes). The source is the full `cifar-100-python.tar.gz`
    or a folder with its `meta`, `train` and `test` files.
    """
    import pandas as pd

    members, fetched = read_cifar_members(data_source)
    check_label_names(fine_label_names(members["meta"]))
    frames = []
    for split_name in SPLITS:
        split = select_split(members[split_name], split_name)
        planes = split.images.transpose(0, 3, 1, 2).reshape(len(split), -1)  # back to the pickle's layout
        frames.append(
            pd.DataFrame(
                {
                    "split": split_name,
                    "row": split.rows,
                    "fine_label": [CLASS_TO_FINE_LABEL[int(label)] for label in split.labels],
                    "label": split.labels,
                    "filename": split.filenames,
                    "pixels": [bytes(p) for p in planes],
                }
            )
        )
    rows = pd.concat(frames, ignore_index=True)
    context.log.info("read %d bicycle/motorcycle rows from %s", len(rows), ", ".join(str(f.path) for f in fetched))
    metadata = {
        **fetched[0].metadata(),
        **table_metadata(rows),
        **{f"{name}_rows": dg.MetadataValue.int(int((rows["split"] == name).sum())) for name in SPLITS},
    }
    version = "-".join(f.sha256[:8] for f in fetched)
    return dg.Output(rows, data_version=dg.DataVersion(version), metadata=metadata)


def pixels_to_image(pixels: bytes) -> "np.ndarray":
    import numpy as np

    return np.frombuffer(bytes(pixels), dtype=np.uint8).reshape(3, 32, 32).transpose(1, 2, 0)


def image_key(split: str, filename: str) -> str:
    return f"{DATASET_PREFIX}/{split}/{filename}"


def manifest_key(split: str) -> str:
    return f"{DATASET_PREFIX}/{split}.lst"


@dg.asset(**COMMON, kinds={"python", "png", "duckdb"}, code_version="1", pool=DUCKDB_POOL)
def labelled_images(context: dg.AssetExecutionContext, cifar100_archive, object_store: ObjectStore):
    """The 1,000 training and 200 test images as 32x32 PNGs under `scones/train/` and `scones/test/`.

    The layout of the original project's bucket: CIFAR file names, and `train.lst` / `test.lst` manifests
    (`row<TAB>label<TAB>filename`). The table indexes them: split, row, label, class name, file name, key.
    """
    import numpy as np
    import pandas as pd

    records = []
    for split_name in SPLITS:
        part = cifar100_archive[cifar100_archive["split"] == split_name]
        for row in part.itertuples(index=False):
            object_key = image_key(split_name, row.filename)
            object_store.put_bytes(object_key, png_bytes(pixels_to_image(row.pixels)), "image/png")
            records.append(
                {
                    "split": split_name,
                    "row": int(row.row),
                    "label": int(row.label),
                    "class_name": CLASS_NAMES[int(row.label)],
                    "filename": row.filename,
                    "key": object_key,
                }
            )
        manifest = CifarSplit(
            split_name,
            part["row"].to_numpy(),
            part["label"].to_numpy(),
            part["filename"].tolist(),
            np.empty((len(part), 32, 32, 3), np.uint8),
        )
        object_store.put_bytes(manifest_key(split_name), manifest_text(manifest).encode(), "text/plain")
    index = pd.DataFrame(records)
    context.log.info("wrote %d PNGs and 2 manifests under %s/", len(index), DATASET_PREFIX)
    counts = index.groupby(["split", "class_name"]).size()
    return dg.Output(
        index,
        metadata={
            **table_metadata(index),
            "location": dg.MetadataValue.text(object_store.uri(DATASET_PREFIX)),
            **{f"{split}_{name}": dg.MetadataValue.int(int(count)) for (split, name), count in counts.items()},
        },
    )


def load_split(index: "pd.DataFrame", split: str, store: ObjectStore) -> "tuple[np.ndarray, np.ndarray]":
    """The split's pixels as N x 3072 rows (height, width, channel), decoded from the stored PNGs."""
    import numpy as np
    from PIL import Image

    part = index[index["split"] == split]
    images = [
        np.asarray(Image.open(io.BytesIO(store.get_bytes(object_key))).convert("RGB"), dtype=np.uint8).reshape(-1)
        for object_key in part["key"]
    ]
    return np.stack(images), part["label"].to_numpy()


@dg.asset(**COMMON, kinds={"scikit-learn", "mlflow"}, code_version="2")
def image_classifier(
    context: dg.AssetExecutionContext, labelled_images, object_store: ObjectStore, mlflow: MlflowRegistry
) -> dg.MaterializeResult:
    """The bicycle/motorcycle classifier, registered as `scones_classifier` (the original's SageMaker ResNet).

    Trained on CPU in well under a minute from the 1,000 stored training PNGs: learned patch-dictionary
    features (k-means on whitened 6x6 patches, mirror-invariant) and a logistic regression, so that
    `predict_proba` gives the original endpoint's `[p_bicycle, p_motorcycle]`. Scored on the 200 test PNGs.
    Not trained again while the code, hyper-parameters and images are those of a registered version.
    """
    from PIL import Image

    # The features subclass scikit-learn's estimators: importing the module imports scikit-learn.
    from mlops_assets.scones.features import build_classifier

    x_train, y_train = load_split(labelled_images, "train", object_store)
    x_test, y_test = load_split(labelled_images, "test", object_store)
    untrained = build_classifier()
    training_fingerprint = fingerprint(
        asset_code_version(context),
        hyper_parameters(untrained),
        {"images": content_version(x_train, y_train, x_test, y_test)},
    )
    existing = registered_version(mlflow, MODEL_NAME, training_fingerprint)
    if existing is not None:
        context.log.info("%s v%s was trained from identical inputs: %s", MODEL_NAME, existing.version, SKIPPED)
        return skipped_result(mlflow, MODEL_NAME, existing, training_fingerprint)
    started = time.perf_counter()
    model = untrained.fit(x_train, y_train)
    train_seconds = time.perf_counter() - started
    evaluation = evaluate(model, x_test, y_test, DEFAULT_THRESHOLD)
    params = {
        **model.named_steps["features"].get_params(),
        "C": model.named_steps["classify"].C,
        "train_images": len(y_train),
        "test_images": len(y_test),
    }
    with mlflow.start_run(
        EXPERIMENT, run_name=f"train-{run_id_of(context)[:8]}", tags={DAGSTER_RUN_TAG: run_id_of(context)}
    ) as run:
        mlflow.activate().log_params(params)
        mlflow.activate().log_metrics({**evaluation.metrics(), "train_seconds": train_seconds})
        matrix_png = confusion_matrix_png(evaluation)
        mlflow.activate().log_image(Image.open(io.BytesIO(matrix_png)), "confusion_matrix.png")
        # An explicit signature: an input example makes MLflow re-validate the model, 6 s of a 20 s training.
        from mlflow.models import infer_signature

        signature = infer_signature(x_test[:2], model.predict_proba(x_test[:2]))
        info = mlflow.log_sklearn_model(model, signature=signature, skops_trusted_types=TRUSTED_TYPES)
    version = mlflow.register(
        MODEL_NAME,
        info.model_uri,
        run.info.run_id,
        tags={
            DAGSTER_RUN_TAG: run_id_of(context),
            "accuracy": f"{evaluation.accuracy:.6f}",
            FINGERPRINT_TAG: training_fingerprint,
        },
    )
    uri = object_store.put_bytes(CONFUSION_MATRIX_KEY, matrix_png, "image/png")
    context.log.info(
        "registered %s v%s: test accuracy %.4f, trained in %.1f s",
        MODEL_NAME,
        version.version,
        evaluation.accuracy,
        train_seconds,
    )
    return dg.MaterializeResult(
        metadata={
            **{name: dg.MetadataValue.float(value) for name, value in evaluation.metrics().items()},
            "train_seconds": dg.MetadataValue.float(train_seconds),
            "original_final_accuracy": dg.MetadataValue.float(ORIGINAL_FINAL_ACCURACY),
            "original_best_accuracy": dg.MetadataValue.float(ORIGINAL_BEST_ACCURACY),
            "training": dg.MetadataValue.text(TRAINED),
            "model_version": dg.MetadataValue.text(str(version.version)),
            "mlflow_run_id": dg.MetadataValue.text(run.info.run_id),
            **mlflow.link_metadata(run.info.run_id, MODEL_NAME, version.version, run.info.experiment_id),
            **image_metadata(matrix_png, uri, "confusion matrix on the 200 test images"),
            FINGERPRINT_TAG: dg.MetadataValue.text(training_fingerprint),
        },
        data_version=dg.DataVersion(training_fingerprint),
    )


def hyper_parameters(model) -> dict:
    """The pipeline's own settings, without the estimator objects whose repr would repeat them."""
    return {name: value for name, value in model.get_params(deep=True).items() if not hasattr(value, "get_params")}


@dg.asset_check(
    asset=MODEL_KEY,
    name="promotion_gate",
    blocking=True,
    pool=PROMOTION_POOL,
    additional_ins={"labelled_images": dg.AssetIn(key=key(SYSTEM, "labelled_images"))},
    description="Promote to champion only if not worse on the 200 test images",
)
def image_classifier_gate(
    context: dg.AssetCheckExecutionContext,
    labelled_images,
    object_store: ObjectStore,
    mlflow: MlflowRegistry,
) -> dg.AssetCheckResult:
    candidate_version, accuracy = candidate_of_run(context, MODEL_KEY, "accuracy")
    x_test, y_test = load_split(labelled_images, "test", object_store)
    return promotion_gate(context, mlflow, x_test, y_test, candidate_version, accuracy)


def promotion_gate(
    context,
    mlflow: MlflowRegistry,
    x_test: "np.ndarray",
    y_test: "np.ndarray",
    candidate_version: str,
    candidate_accuracy: float,
) -> dg.AssetCheckResult:
    """The shared gate, with the current champion scored on the same test images as the candidate."""
    return gate(
        context,
        mlflow,
        MODEL_NAME,
        "accuracy",
        candidate_version,
        candidate_accuracy,
        lambda champion: (
            evaluate(mlflow.load_version(MODEL_NAME, champion.version), x_test, y_test, DEFAULT_THRESHOLD).accuracy
        ),
    )
