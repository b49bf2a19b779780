"""The three steps' data contract, as the original Lambdas had it."""

import base64

import numpy as np
import pytest
from PIL import Image

from mlops_assets.scones.constants import THRESHOLD_FAILURE
from mlops_assets.scones.imaging import ImageRejected
from mlops_assets.scones.workflow import (
    INVALID_IMAGE,
    PASSED,
    ThresholdConfidenceNotMet,
    Verdict,
    classify,
    filter_inference,
    serialize,
)
from tests.scones.helpers import encoded


class FixedModel:
    """Answers the same probabilities for every image and records what it was given."""

    def __init__(self, probabilities):
        self.probabilities = probabilities
        self.seen = None

    def predict_proba(self, rows):
        self.seen = rows
        return np.array([self.probabilities] * len(rows))


def png() -> bytes:
    return encoded(Image.new("RGB", (32, 32), (5, 6, 7)))


def test_serialize_classify_filter_contract():
    event = serialize(png(), "bucket", "scones/incoming/a.png")
    assert set(event) == {"image_data", "s3_bucket", "s3_key", "inferences"}
    assert base64.b64decode(event["image_data"]) == png() and event["inferences"] == []
    assert (event["s3_bucket"], event["s3_key"]) == ("bucket", "scones/incoming/a.png")
    model = FixedModel([0.1, 0.9])
    classified = classify(event, model)
    assert classified == {**event, "inferences": [pytest.approx(0.1), pytest.approx(0.9)]}
    assert model.seen.shape == (1, 3072) and model.seen[0, :3].tolist() == [5, 6, 7]
    assert filter_inference(classified, 0.85) == classified
    # The capture table's row: both probabilities, the likelier class and its confidence, no failure detail.
    assert Verdict.from_inferences(classified["inferences"], 0.85) == Verdict(
        pytest.approx(0.1), pytest.approx(0.9), "motorcycle", pytest.approx(0.9), PASSED, ""
    )


def test_weak_inference_fails_loudly():
    classified = classify(serialize(png(), "b", "k.png"), FixedModel([0.55, 0.45]))
    with pytest.raises(ThresholdConfidenceNotMet) as failure:
        filter_inference(classified, 0.85)
    # The message names the image, as the run's failure and the capture table show it.
    assert str(failure.value) == f"{THRESHOLD_FAILURE}: best confidence 0.5500 < threshold 0.85 for s3://b/k.png"
    assert Verdict.from_inferences(classified["inferences"], 0.85) == Verdict(
        pytest.approx(0.55),
        pytest.approx(0.45),
        "bicycle",
        pytest.approx(0.55),
        THRESHOLD_FAILURE,
        "best confidence 0.5500 < threshold 0.85",
    )
    # The threshold is the caller's: the same inference passes a lower bar, in the filter and in the capture row.
    assert filter_inference(classified, 0.5) == classified
    assert Verdict.from_inferences(classified["inferences"], 0.5).verdict == PASSED


def test_corrupt_image_is_rejected_at_classify():
    with pytest.raises(ImageRejected):
        classify(serialize(b"not an image", "b", "k.png"), FixedModel([0.5, 0.5]))


def test_an_unclassified_event_never_passes_the_filter():
    with pytest.raises(ThresholdConfidenceNotMet, match=r"best confidence nan < threshold 0\.85 for s3://b/k\.png$"):
        filter_inference(serialize(png(), "b", "k.png"))


def test_a_rejected_image_is_recorded_with_its_reason_and_no_probabilities():
    assert Verdict.rejected("the object is gone") == Verdict(
        None, None, None, None, INVALID_IMAGE, "the object is gone"
    )
