"""Scones drift: statistics of the uploaded images and the champion's confidence on them, against the training
images' statistics and the champion's confidence on the 200 test images."""

import io
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common.constants import DUCKDB_POOL
from mlops_assets.common.drift import drift_output
from mlops_assets.common.keys import key, placement
from mlops_assets.common.monitoring import DRIFT_CHECK, HOURLY, check_spec, parse_inputs, parse_outputs, read_log
from mlops_assets.scones.classifier import CHAMPIONS
from mlops_assets.scones.constants import SYSTEM
from resources.mlflow_registry import MlflowRegistry
from resources.monitoring import MonitoringSettings
from resources.object_store import ObjectStore

if TYPE_CHECKING:
    import pandas as pd

CLASSIFY_ROUTE = "/scones/classify"
IMAGE_STATISTICS = ["width", "height", "mean_brightness", "std_brightness"]
COLUMNS = [*IMAGE_STATISTICS, "confidence"]
CHECKS = [dg.AssetCheckKey(key(SYSTEM, "input_drift"), DRIFT_CHECK)]


def image_statistics(data: bytes) -> dict[str, float]:
    """What the inference log keeps of an image (docs/monitoring.md): size and grey-level (0-255) mean and std."""
    import numpy as np
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    return {
        "width": float(image.width),
        "height": float(image.height),
        "mean_brightness": float(grey.mean()),
        "std_brightness": float(grey.std()),
    }


def logged_images(log: "pd.DataFrame") -> "pd.DataFrame":
    """Image statistics and the answer's confidence of each logged classification."""
    import numpy as np
    import pandas as pd

    log = log[log["route"] == CLASSIFY_ROUTE]
    if log.empty:
        return pd.DataFrame(columns=COLUMNS)
    inputs, outputs = parse_inputs(log), parse_outputs(log)
    frame = inputs.reindex(columns=IMAGE_STATISTICS)
    if "confidence" in outputs:
        frame["confidence"] = pd.to_numeric(outputs["confidence"], errors="coerce")
    elif "inferences" in outputs:
        frame["confidence"] = outputs["inferences"].map(lambda values: max(values) if values else np.nan)
    else:
        frame["confidence"] = np.nan
    return frame.dropna().astype(float)


def reference_frame(labelled_images: "pd.DataFrame", store: ObjectStore, mlflow: MlflowRegistry) -> "pd.DataFrame":
    """Training images' statistics; confidence: the champion's on the test images (its own data, unseen)."""
    import numpy as np
    import pandas as pd

    from mlops_assets.scones.assets import load_split

    champion = CHAMPIONS.get(mlflow)
    if champion is None:
        return pd.DataFrame(columns=COLUMNS)
    train = labelled_images[labelled_images["split"] == "train"]
    statistics = pd.DataFrame([image_statistics(store.get_bytes(object_key)) for object_key in train["key"]])
    x_test, _ = load_split(labelled_images, "test", store)
    confidence = champion.model.predict_proba(x_test).max(axis=1)
    # Two samples of different sizes: each column is compared on its own, so the lengths need not match.
    statistics["confidence"] = np.resize(confidence, len(statistics))
    return statistics


@dg.asset(
    **placement(SYSTEM),
    kinds={"evidently", "html"},
    code_version="1",
    pool=DUCKDB_POOL,
    automation_condition=HOURLY,
    ins={"labelled_images": dg.AssetIn(key=key(SYSTEM, "labelled_images"))},
    check_specs=[
        check_spec(
            SYSTEM,
            "input_drift",
            DRIFT_CHECK,
            "Warns when the share of drifted image statistics (and confidence) reaches the configured threshold",
        )
    ],
)
def input_drift(
    context: dg.AssetExecutionContext,
    labelled_images,
    object_store: ObjectStore,
    mlflow: MlflowRegistry,
    monitoring: MonitoringSettings,
):
    """Drift of the last week's images classified on `/scones/classify`: size, brightness and contrast against
    the 1,000 training images, and the champion's confidence against its confidence on the 200 test images."""
    reference = reference_frame(labelled_images, object_store, mlflow)
    current = logged_images(read_log(object_store, SYSTEM))
    result, check = drift_output(
        context, object_store, monitoring, SYSTEM, "input_drift", reference, current, numerical=COLUMNS
    )
    yield result
    yield check
