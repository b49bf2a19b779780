"""The original's filter threshold, 0.85, applied when no threshold is given: by the workflow's filter and by the
inference job's run config."""

import pytest

from mlops_assets.scones.inference import FilterSettings
from mlops_assets.scones.workflow import ThresholdConfidenceNotMet, filter_inference, passes

EVENT = {"image_data": "", "s3_bucket": "local", "s3_key": "scones/incoming/bike.png"}


@pytest.mark.parametrize(
    "inferences, passed",
    [
        ([0.849, 0.151], False),
        ([0.151, 0.849], False),
        ([0.5, 0.5], False),
        ([0.85, 0.15], True),
        ([0.15, 0.85], True),
        ([0.97, 0.03], True),
    ],
)
def test_the_default_threshold_is_the_originals_085(inferences, passed):
    event = {**EVENT, "inferences": inferences}
    assert passes(inferences) is passed
    if passed:
        assert filter_inference(event) == event
    else:
        with pytest.raises(ThresholdConfidenceNotMet, match=r"THRESHOLD_CONFIDENCE_NOT_MET: .* < threshold 0\.85"):
            filter_inference(event)


def test_the_inference_job_filters_at_085_unless_configured():
    assert FilterSettings().threshold == 0.85
    assert FilterSettings(threshold=0.5).threshold == 0.5
