"""The `pistachio` system's Dagster definitions, built when the package's `defs` is first asked for."""

import dagster as dg

from mlops_assets.common.retrain import RetrainOnFailure
from mlops_assets.pistachio import automation, monitoring
from mlops_assets.pistachio.assets import (
    champion_model_file,
    model_sweep,
    raw_snapshot,
    registered_model,
    snapshot_splits,
    weekly_snapshot_files,
)
from mlops_assets.pistachio.checks import champion_promotion

# A failed drift or realized-performance check retrains the latest week (sensors/retrain.py, when switched on).
RETRAIN = RetrainOnFailure(monitoring.CHECKS, "pistachio_training_job", monitoring.latest_snapshot)

defs = dg.Definitions.merge(
    dg.Definitions(
        assets=[
            weekly_snapshot_files,
            raw_snapshot,
            snapshot_splits,
            model_sweep,
            registered_model,
            champion_model_file,
            monitoring.realized_performance,
            monitoring.realized_performance_chart,
            monitoring.input_drift,
        ],
        asset_checks=[champion_promotion],
    ),
    automation.defs,
)
