"""The model gate shared by every system: a candidate replaces the champion only if it is not worse."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from mlops_assets.common.runs import run_id_of
from resources.mlflow_registry import CHALLENGER, CHAMPION, MlflowRegistry


@dataclass(frozen=True)
class PromotionDecision:
    model_name: str
    metric: str
    candidate_version: str
    candidate_score: float
    champion_version: str | None
    champion_score: float | None
    alias: str  # the alias the candidate received: champion or challenger

    @property
    def promoted(self) -> bool:
        return self.alias == CHAMPION

    @property
    def kept(self) -> bool:
        """The candidate is the champion already (the gate re-run on a version a skipped training re-emitted)."""
        return self.champion_version == self.candidate_version

    @property
    def reason(self) -> str:
        if self.kept:
            return f"version {self.candidate_version} is the champion already: it keeps serving"
        if self.champion_version is None:
            return f"no champion yet: version {self.candidate_version} becomes champion"
        comparison = (
            f"{self.metric} {self.candidate_score:.4f} vs champion v{self.champion_version} {self.champion_score:.4f}"
        )
        if self.promoted:
            return f"not worse ({comparison}): version {self.candidate_version} becomes champion"
        return f"worse ({comparison}): version {self.candidate_version} becomes challenger, champion kept"

    def metadata(self) -> dict[str, dg.MetadataValue]:
        meta = {
            "decision": dg.MetadataValue.text(self.alias),
            "reason": dg.MetadataValue.text(self.reason),
            "candidate_version": dg.MetadataValue.text(self.candidate_version),
            f"candidate_{self.metric}": dg.MetadataValue.float(float(self.candidate_score)),
        }
        if self.champion_version is not None:
            meta["previous_champion_version"] = dg.MetadataValue.text(self.champion_version)
            meta[f"champion_{self.metric}"] = dg.MetadataValue.float(float(self.champion_score))
        return meta


def decide_alias(candidate_score: float, champion_score: float | None) -> str:
    """The rule of every system here (and the Pistachio original's): ties go to the newer model."""
    if champion_score is None or candidate_score >= champion_score:
        return CHAMPION
    return CHALLENGER


def apply_promotion(
    registry: MlflowRegistry,
    model_name: str,
    metric: str,
    candidate_version: str,
    candidate_score: float,
    champion_version: str | None,
    champion_score: float | None,
) -> PromotionDecision:
    """Decide, move the alias, and record the decision on the candidate's (and old champion's) version tags."""
    alias = decide_alias(candidate_score, champion_score)
    decision = PromotionDecision(
        model_name,
        metric,
        str(candidate_version),
        float(candidate_score),
        None if champion_version is None else str(champion_version),
        None if champion_score is None else float(champion_score),
        alias,
    )
    when = datetime.now(UTC).isoformat()
    if decision.promoted:
        registry.set_alias(model_name, CHAMPION, candidate_version)
        current_challenger = registry.version_by_alias(model_name, CHALLENGER)
        if current_challenger is not None and str(current_challenger.version) == str(candidate_version):
            registry.delete_alias(model_name, CHALLENGER)
        if champion_version is not None and str(champion_version) != str(candidate_version):
            registry.tag_version(
                model_name,
                champion_version,
                {"promotion.replaced_by": candidate_version, "promotion.replaced_at": when},
            )
    else:
        registry.set_alias(model_name, CHALLENGER, candidate_version)
    registry.tag_version(
        model_name,
        candidate_version,
        {
            "promotion.decision": alias,
            "promotion.reason": decision.reason,
            "promotion.decided_at": when,
            f"promotion.candidate_{metric}": f"{candidate_score:.6f}",
            **({f"promotion.champion_{metric}": f"{champion_score:.6f}"} if champion_score is not None else {}),
        },
    )
    return decision


def candidate_of_run(
    context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey, metric: str | None = None
) -> tuple[str, float | None]:
    """The version (and its `metric`) this run's materialization of the model asset reported: the candidate.

    Read from this run's own events, not from the asset's newest materialization: while this gate waits for its
    pool, another run (the daemon's eager retraining beside a bootstrap, say) may write the model too."""
    records = context.instance.get_records_for_run(
        run_id_of(context), of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, ascending=False
    ).records
    mine = [r.asset_materialization for r in records if r.asset_key == asset_key]
    if not mine:
        raise dg.Failure(
            description=f"{asset_key.to_user_string()} was not materialized in this run: no candidate to gate"
        )
    metadata = mine[0].metadata
    score = None if metric is None else float(metadata[metric].value)
    return str(metadata["model_version"].value), score


def promotion_gate(
    context,
    registry: MlflowRegistry,
    model_name: str,
    metric: str,
    candidate_version: str,
    candidate_score: float,
    score_champion: Callable[[Any], float],
    check_name: str = "promotion_gate",
) -> dg.AssetCheckResult:
    """The promotion gate of every model system: the candidate becomes `champion` only if it is not worse.

    Same holdout: `score_champion(version)` scores the current champion on exactly the data the candidate's
    `candidate_score` came from, so the two numbers are comparable. Ties go to the newer model; the gate
    re-run for the serving champion (a skipped training re-emits its version) keeps it and rewrites nothing.

    One rule for severity and blocking, the same in every system (the check is declared `blocking=True` and
    runs alone in the `model_promotion` pool, limit 1, so two runs cannot both read and move `champion`):
    - promoted: passed.
    - the candidate lost: failed with severity WARN. A normal outcome: the candidate becomes `challenger`, the
      champion keeps serving, nothing downstream is blocked.
    - no decision (the registry cannot be read, the champion cannot be loaded or scored): failed with severity
      ERROR, no alias moves, and the blocking check stops everything downstream of the model.
    The decision is recorded as tags on the registered versions (`promotion.*`) and as this check's metadata.
    """
    try:
        decision = decide_promotion(registry, model_name, metric, candidate_version, candidate_score, score_champion)
    except ComparisonFailed as exc:  # the comparison did not happen: promote nothing
        reason = f"no decision, no alias moved: {exc}"
        context.log.error("%s v%s: %s", model_name, candidate_version, reason)
        return dg.AssetCheckResult(
            check_name=check_name,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=reason[:1000],
            metadata={
                "decision": dg.MetadataValue.text("none"),
                "reason": dg.MetadataValue.text(reason[:1000]),
                "candidate_version": dg.MetadataValue.text(str(candidate_version)),
            },
        )
    context.log.info(decision.reason)
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=decision.promoted,
        severity=dg.AssetCheckSeverity.WARN,
        description=decision.reason,
        metadata=decision.metadata(),
    )


class ComparisonFailed(Exception):
    """The champion could not be read or scored: no decision can be made."""


def decide_promotion(
    registry: MlflowRegistry,
    model_name: str,
    metric: str,
    candidate_version: str,
    candidate_score: float,
    score_champion: Callable[[Any], float],
) -> PromotionDecision:
    """Compare the candidate with the current champion (scored by `score_champion`) and move the aliases.

    Raises ComparisonFailed, with no alias moved, when the champion cannot be read or scored.
    The candidate that is the champion already is kept as it is: no alias moves, and the tags of the decision that
    made it champion stay.
    """
    try:
        champion = registry.version_by_alias(model_name, CHAMPION)
        if champion is not None and str(champion.version) == str(candidate_version):
            return PromotionDecision(
                model_name,
                metric,
                str(candidate_version),
                float(candidate_score),
                str(candidate_version),
                float(candidate_score),
                CHAMPION,
            )
        champion_score = None if champion is None else float(score_champion(champion))
    except Exception as exc:
        raise ComparisonFailed(f"{type(exc).__name__}: {exc}") from exc
    return apply_promotion(
        registry,
        model_name,
        metric,
        str(candidate_version),
        float(candidate_score),
        None if champion is None else str(champion.version),
        champion_score,
    )
