"""A compiled copy of a deployed Pipeline for serving: ONNX run by onnxruntime, used only where it agrees.

A single-row scikit-learn predict is milliseconds of Python (input validation, pandas indexing inside
ColumnTransformer, feature-name checks), which is most of the API's round trip; onnxruntime runs the same graph
in a fraction of a millisecond. Converters are not exact, though: skl2onnx drops the link function of a
HistGradientBoosting model with a gamma or poisson loss, for one, and computes trees in float32. So a compiled
copy is published only when it answers like the Pipeline on probe rows derived from the form config (every
option of every select field, numbers across their declared range, missing optional values); otherwise the
deployment is served by the Pipeline itself and the reason is recorded. Rows the probes cannot vouch for (a
missing text value: ONNX string tensors have no missing value) are always predicted by the Pipeline.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_assets.deploy.config import Deployment, input_frame, raw_outputs, scaled_value
from resources.model_bucket import sha256_bytes

if TYPE_CHECKING:
    import numpy as np

RELATIVE_TOLERANCE = 1e-4  # raw outputs (before scale and rounding) may differ this much: float32 trees
PROBE_ROWS = 400
ONNX_FILE = "model.onnx"
# Which runtime answers a deployment: recorded in asset metadata, on each prediction and in /api/deployments.
COMPILED_RUNTIME, PIPELINE_RUNTIME = "onnxruntime", "scikit-learn"


@dataclass(frozen=True)
class Compilation:
    """The outcome of compiling one Pipeline: the ONNX bytes when they passed the probes, else why not."""

    onnx: bytes | None
    note: str
    probe_rows: int = 0
    max_relative_error: float | None = None

    @property
    def runtime(self) -> str:
        return COMPILED_RUNTIME if self.onnx is not None else PIPELINE_RUNTIME

    @property
    def sha256(self) -> str | None:
        return sha256_bytes(self.onnx) if self.onnx is not None else None

    def record(self) -> dict | None:
        """What deployment.json says about the compiled file (None: serve the Pipeline)."""
        if self.onnx is None:
            return None
        return {
            "file": ONNX_FILE,
            "sha256": self.sha256,
            "probe_rows": self.probe_rows,
            "max_relative_error": self.max_relative_error,
        }


def probe_rows(deployment: Deployment, count: int = PROBE_ROWS, seed: int = 0) -> list[dict]:
    """Rows the schema accepts: the raw example, each select option in turn, then random rows over the ranges."""
    rng = random.Random(seed)
    base = dict(deployment.raw_example)
    rows = [base]
    for f in deployment.fields:
        rows += [{**base, f.name: value} for value in f.values]
        if not f.required:
            rows.append({**base, f.name: None})
    while len(rows) < count:
        rows.append({f.name: _random_value(f, base.get(f.name), rng) for f in deployment.fields})
    return rows


def _random_value(f, example: Any, rng: random.Random) -> Any:
    if f.values:
        return rng.choice(f.values) if f.required or rng.random() > 0.1 else None
    if not f.required and rng.random() < 0.1:
        return None
    low = f.min if f.min is not None else min(0.0, float(example or 0.0))
    high = f.max if f.max is not None else max(1.0, 4 * abs(float(example or 1.0)))
    value = rng.uniform(low, high)
    return round(value) if f.dtype == "int" else round(value, 3)


def onnx_feeds(deployment: Deployment, rows: list[dict]) -> dict[str, np.ndarray]:
    """One (n, 1) input per field: strings as objects, numbers (and missing ones, as NaN) as float32."""
    import numpy as np

    feeds = {}
    for f in deployment.fields:
        values = [row.get(f.name) for row in rows]
        if f.dtype == "str":
            feeds[f.name] = np.array(values, dtype=object).reshape(-1, 1)
        else:
            feeds[f.name] = np.array([math.nan if v is None else v for v in values], dtype=np.float32).reshape(-1, 1)
    return feeds


def compiled_supports(deployment: Deployment, row: dict) -> bool:
    return all(row.get(f.name) is not None for f in deployment.fields if f.dtype == "str")


def _pipeline_outputs(deployment: Deployment, model: Any, rows: list[dict]) -> np.ndarray:
    import pandas as pd  # probes run in the asset; serving must not load pandas at start

    frame = pd.concat([input_frame(deployment, row) for row in rows], ignore_index=True)
    return raw_outputs(deployment, model, frame).astype(float)


def compile_pipeline(deployment: Deployment, model: Any) -> Compilation:
    """Convert with skl2onnx and compare with the Pipeline on the probe rows; never raises for a bad model."""
    import numpy as np

    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    except ImportError:  # an optional speed-up: without the converter the Pipeline serves
        return Compilation(None, "skl2onnx is not installed")
    types = [
        (f.name, StringTensorType([None, 1]) if f.dtype == "str" else FloatTensorType([None, 1]))
        for f in deployment.fields
    ]
    options = {id(model): {"zipmap": False}} if deployment.prediction.method == "predict_proba" else None
    try:
        onnx = convert_sklearn(model, initial_types=types, options=options).SerializeToString()
        runner = CompiledModel(deployment, onnx)
    except Exception as exc:  # unsupported step, custom transformer, ...: the Pipeline serves
        return Compilation(None, f"not convertible: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    rows = [row for row in probe_rows(deployment) if compiled_supports(deployment, row)]
    try:
        expected = _pipeline_outputs(deployment, model, rows)
        actual = runner.raw_outputs(rows)
    except Exception as exc:
        return Compilation(None, f"could not compare on probe rows: {type(exc).__name__}: {exc}"[:400])
    relative = np.abs(actual - expected) / np.maximum(1.0, np.abs(expected))
    worst = float(np.nanmax(relative)) if len(relative) else math.inf
    if not np.all(np.isfinite(actual) == np.isfinite(expected)) or not worst <= RELATIVE_TOLERANCE:
        bad = int(np.argmax(np.where(np.isfinite(relative), relative, np.inf)))
        return Compilation(
            None,
            f"disagrees with the Pipeline on probe row {bad} ({rows[bad]}): "
            f"{float(actual[bad]):.6g} vs {float(expected[bad]):.6g}",
            len(rows),
            worst,
        )
    return Compilation(
        onnx, f"agrees with the Pipeline on {len(rows)} probe rows (max relative error {worst:.2e})", len(rows), worst
    )


class CompiledModel:
    """An onnxruntime session for one deployment, single-threaded (one row at a time, two shared cores)."""

    def __init__(self, deployment: Deployment, onnx: bytes):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.deployment = deployment
        self.session = onnxruntime.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
        outputs = [o.name for o in self.session.get_outputs()]
        # Classifiers give (label, probabilities); regressors one output.
        self.output = "probabilities" if deployment.prediction.method == "predict_proba" else outputs[0]
        if self.output not in outputs:
            raise ValueError(f"the compiled model has no {self.output!r} output (outputs: {outputs})")

    def raw_outputs(self, rows: list[dict]) -> np.ndarray:
        import numpy as np

        result = np.asarray(self.session.run([self.output], onnx_feeds(self.deployment, rows))[0])
        if self.deployment.prediction.method == "predict_proba":
            return result[:, self.deployment.prediction.class_index].astype(float)
        return result.astype(float).ravel()

    def predict_value(self, row: dict) -> float:
        return scaled_value(self.deployment, self.raw_outputs([row])[0])
