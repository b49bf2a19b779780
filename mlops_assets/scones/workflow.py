"""The original's three Lambda functions as plain functions with the same event contract.

serialize: {s3_bucket, s3_key} → {image_data (base64), s3_bucket, s3_key, inferences: []}
classify:  → inferences = [p_bicycle, p_motorcycle]
filter:    passes when any inference reaches the threshold, else raises THRESHOLD_CONFIDENCE_NOT_MET.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from mlops_assets.scones.constants import CLASS_NAMES, DEFAULT_THRESHOLD, THRESHOLD_FAILURE
from mlops_assets.scones.imaging import image_row

PASSED = "passed"
INVALID_IMAGE = "INVALID_IMAGE"


class ThresholdConfidenceNotMet(RuntimeError):
    """The original's loud failure for a weak inference; the message starts with THRESHOLD_CONFIDENCE_NOT_MET."""

    def __init__(self, event: dict[str, Any], threshold: float):
        best = max(event["inferences"]) if event.get("inferences") else float("nan")
        super().__init__(
            f"{THRESHOLD_FAILURE}: best confidence {best:.4f} < threshold {threshold:.2f} "
            f"for s3://{event.get('s3_bucket')}/{event.get('s3_key')}"
        )


def serialize(image_bytes: bytes, s3_bucket: str, s3_key: str) -> dict[str, Any]:
    return {
        "image_data": base64.b64encode(image_bytes).decode("ascii"),
        "s3_bucket": s3_bucket,
        "s3_key": s3_key,
        "inferences": [],
    }


def classify(event: dict[str, Any], model) -> dict[str, Any]:
    """Adds the model's probabilities; an undecodable image raises imaging.ImageRejected."""
    row = image_row(base64.b64decode(event["image_data"]))
    probabilities = model.predict_proba(row)[0]
    return {**event, "inferences": [float(p) for p in probabilities]}


def passes(inferences: list[float], threshold: float = DEFAULT_THRESHOLD) -> bool:
    return any(value >= threshold for value in inferences)


def filter_inference(event: dict[str, Any], threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    if not passes(event["inferences"], threshold):
        raise ThresholdConfidenceNotMet(event, threshold)
    return event


@dataclass(frozen=True)
class Verdict:
    """What one inference concluded, in the shape of a row of the capture table."""

    p_bicycle: float | None
    p_motorcycle: float | None
    predicted_class: str | None
    max_confidence: float | None
    verdict: str
    detail: str

    @classmethod
    def from_inferences(cls, inferences: list[float], threshold: float) -> Verdict:
        import numpy as np

        best = int(np.argmax(inferences))
        ok = passes(inferences, threshold)
        return cls(
            float(inferences[0]),
            float(inferences[1]),
            CLASS_NAMES[best],
            float(inferences[best]),
            PASSED if ok else THRESHOLD_FAILURE,
            "" if ok else f"best confidence {inferences[best]:.4f} < threshold {threshold:.2f}",
        )

    @classmethod
    def rejected(cls, reason: str) -> Verdict:
        return cls(None, None, None, None, INVALID_IMAGE, reason)
