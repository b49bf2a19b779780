"""A system's retrain path: which of its monitoring checks, when one fails, start which of its training jobs.

A system declares it in its `definitions.py` as `RETRAIN = RetrainOnFailure(...)`; the platform's retrain sensor
(`sensors/retrain.py`) is built from it, with the on/off switch and the cursor that every system shares.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dagster as dg


@dataclass(frozen=True)
class RetrainOnFailure:
    checks: Sequence[dg.AssetCheckKey]  # the monitoring checks (drift, realized performance) it watches
    job: str  # the training job a failure requests
    # The partition to train, for a partitioned training job (Pistachio trains its latest week).
    partition_key: Callable[[dg.DagsterInstance], str | None] | None = None
