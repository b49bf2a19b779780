"""Scones automation: training, the inference workflow triggered by landings, the monitoring chart.

MERGE NOTE: the jobs, schedule and landing sensor still live in `sensors/scones.py` (another branch changes them
at the same time); move that module's body here (its bootstrap part to `bootstrap.py`), delete `sensors/`, and
point the imports of tests/scones and scripts/bench_scones.py at this module.
"""

import datetime as dt

import dagster as dg

from mlops_assets.common.keys import key
from mlops_assets.scones.constants import SYSTEM
from sensors.scones import (  # noqa: F401  (re-exported until the merge moves them here)
    LOOKBACK,
    MAX_BATCH,
    LandingCursor,
    batch_request,
    bucket_of,
    defs,
    inference_job,
    landing,
    monitoring_job,
    monitoring_schedule,
    scones_incoming_images,
    training_job,
)

# The monitoring schedule redraws the chart every 15 minutes: older than two of its ticks, the chart is stale.
FRESHNESS = {key(SYSTEM, "confidence_chart"): dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(minutes=30), warn_window=dt.timedelta(minutes=20))}
