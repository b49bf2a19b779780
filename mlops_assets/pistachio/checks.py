"""The promotion gate: the original's production/staging rule, on registry aliases and on one holdout.

The original compared the AUC recorded on each version, each measured on its own week's validation split. Here
the champion is scored again on the candidate's validation split (AUC on hard predictions, the original's
metric), so the two numbers the rule compares come from the same rows.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dagster as dg

from mlops_assets.common.constants import PROMOTION_POOL
from mlops_assets.common.keys import key
from mlops_assets.common.promotion import PromotionDecision, candidate_of_run, decide_promotion, promotion_gate
from mlops_assets.pistachio.assets import METRIC, registered_model
from mlops_assets.pistachio.constants import MODEL_NAME, SYSTEM
from mlops_assets.pistachio.model_file import load_pipeline
from mlops_assets.pistachio.sweep import SplitData
from resources import MlflowRegistry
from resources.mlflow_registry import model_uri

if TYPE_CHECKING:
    import pandas as pd

PARTITION_TAG = "dagster/partition"


def validation_auc(model, data: SplitData) -> float:
    """AUC of `model`'s hard predictions on the validation split: how the sweep scored every configuration."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(data.y["val"], model.predict(data.X["val"])))


def champion_scorer(registry: MlflowRegistry, splits: "pd.DataFrame") -> Callable[[Any], float]:
    """Scores a registered version on the validation split in `splits` (one week's), loading it with the code's
    trusted types. Without that split there is nothing to compare on: scoring fails, and the gate decides nothing."""

    def score(version) -> float:
        if splits.empty:
            raise ValueError("the candidate's validation split is missing: no comparison on the same holdout")
        return validation_auc(
            load_pipeline(registry, model_uri(MODEL_NAME, version.version)), SplitData.from_frame(splits)
        )

    return score


def promote(
    registry: MlflowRegistry, candidate_version: str, candidate_score: float, score_champion: Callable[[Any], float]
) -> PromotionDecision:
    """No champion -> champion; champion's score higher -> challenger; otherwise (ties too) -> champion."""
    return decide_promotion(registry, MODEL_NAME, METRIC, str(candidate_version), candidate_score, score_champion)


@dg.asset_check(
    asset=registered_model,
    blocking=True,
    pool=PROMOTION_POOL,
    additional_ins={"snapshot_splits": dg.AssetIn(key=key(SYSTEM, "snapshot_splits"))},
    description="Moves `champion` to the new version unless the champion scores a higher validation AUC on the "
    "new version's validation split (then the new version becomes `challenger`); warns when the candidate lost.",
)
def champion_promotion(
    context: dg.AssetCheckExecutionContext, snapshot_splits, mlflow: MlflowRegistry
) -> dg.AssetCheckResult:
    candidate_version, candidate_score = candidate_of_run(context, registered_model.key, METRIC)
    # A check is not partitioned: its input is the whole table, every week; the candidate's week is the run's.
    week = context.run.tags.get(PARTITION_TAG)
    return promotion_gate(
        context,
        mlflow,
        MODEL_NAME,
        METRIC,
        candidate_version,
        candidate_score,
        champion_scorer(mlflow, snapshot_splits[snapshot_splits["snapshot"] == week]),
        check_name="champion_promotion",
    )
