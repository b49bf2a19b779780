"""The promotion gate: the original's production/staging rule, on registry aliases."""

import dagster as dg

from mlops_assets.common.constants import PROMOTION_POOL
from mlops_assets.common.promotion import PromotionDecision, candidate_of_run, decide_promotion, promotion_gate
from mlops_assets.pistachio.assets import registered_model
from mlops_assets.pistachio.constants import MODEL_NAME, VALIDATION_AUC_TAG
from resources import MlflowRegistry

METRIC = "val_auc"


def _validation_auc(version) -> float:
    value = dict(version.tags or {}).get(VALIDATION_AUC_TAG)
    if value is None:
        raise dg.Failure(description=f"{MODEL_NAME} v{version.version} has no '{VALIDATION_AUC_TAG}' tag")
    return float(value)


def promote(registry: MlflowRegistry, candidate_version: str) -> PromotionDecision:
    """No champion -> champion; champion's validation AUC higher -> challenger; otherwise (ties too) -> champion."""
    candidate = registry.client().get_model_version(MODEL_NAME, candidate_version)
    return decide_promotion(
        registry, MODEL_NAME, METRIC, str(candidate_version), _validation_auc(candidate), _validation_auc
    )


@dg.asset_check(
    asset=registered_model,
    blocking=True,
    pool=PROMOTION_POOL,
    description="Moves `champion` to the new version unless the champion's validation AUC is higher "
    "(then the new version becomes `challenger`); warns when the candidate lost.",
)
def champion_promotion(context: dg.AssetCheckExecutionContext, mlflow: MlflowRegistry) -> dg.AssetCheckResult:
    candidate_version, _ = candidate_of_run(context, registered_model.key)
    candidate = mlflow.client().get_model_version(MODEL_NAME, candidate_version)
    return promotion_gate(
        context,
        mlflow,
        MODEL_NAME,
        METRIC,
        candidate_version,
        _validation_auc(candidate),
        _validation_auc,
        check_name="champion_promotion",
    )
