"""The promotion gate: the original's production/staging rule, on registry aliases."""


import dagster as dg

from mlops_assets.common.constants import PROMOTION_POOL
from mlops_assets.common.promotion import PromotionDecision, apply_promotion
from mlops_assets.pistachio.assets import registered_model
from mlops_assets.pistachio.constants import MODEL_NAME, VALIDATION_AUC_TAG
from resources import CHAMPION, MlflowRegistry

METRIC = "val_auc"


def _validation_auc(version) -> float:
    value = dict(version.tags or {}).get(VALIDATION_AUC_TAG)
    if value is None:
        raise dg.Failure(description=f"{MODEL_NAME} v{version.version} has no '{VALIDATION_AUC_TAG}' tag")
    return float(value)


def promote(registry: MlflowRegistry, candidate_version: str) -> PromotionDecision:
    """No champion -> champion; champion's validation AUC higher -> challenger; otherwise (ties too) -> champion."""
    candidate = registry.client().get_model_version(MODEL_NAME, candidate_version)
    champion = registry.version_by_alias(MODEL_NAME, CHAMPION)
    if champion is not None and str(champion.version) == str(candidate_version):
        champion = None  # re-running the gate for the serving champion keeps it
    return apply_promotion(
        registry, MODEL_NAME, METRIC, str(candidate_version), _validation_auc(candidate),
        None if champion is None else str(champion.version),
        None if champion is None else _validation_auc(champion),
    )


def _candidate_version(context: dg.AssetCheckExecutionContext) -> str:
    """The version registered by this run's materialization of registered_model (the check runs right after)."""
    records = context.instance.fetch_materializations(registered_model.key, limit=1).records
    if not records or records[0].run_id != context.run.run_id:
        raise dg.Failure(description="registered_model was not materialized in this run: no candidate to gate")
    return str(records[0].asset_materialization.metadata["model_version"].value)


@dg.asset_check(asset=registered_model, blocking=True, pool=PROMOTION_POOL,
                description="Moves `champion` to the new version unless the champion's validation AUC is higher "
                            "(then the new version becomes `challenger`); warns when the candidate lost.")
def champion_promotion(context: dg.AssetCheckExecutionContext, mlflow: MlflowRegistry) -> dg.AssetCheckResult:
    decision = promote(mlflow, _candidate_version(context))
    context.log.info(decision.reason)
    # A lost comparison is a normal outcome: WARN shows it without failing the run or blocking the export.
    return dg.AssetCheckResult(passed=decision.promoted, severity=dg.AssetCheckSeverity.WARN,
                               description=decision.reason, metadata=decision.metadata())
