"""Scones' first materialization: the dataset, a champion classifier, a first chart and a few sample landings.

MERGE NOTE: the body still lives in `sensors/scones.py` (see automation.py); move it here at the merge.
"""

from sensors.scones import SAMPLE_LANDINGS, bootstrap, land_sample_images  # noqa: F401  (moved here at the merge)
