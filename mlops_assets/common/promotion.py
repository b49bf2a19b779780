"""The model gate shared by every system: a candidate replaces the champion only if it is not worse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg

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
    def reason(self) -> str:
        if self.champion_version is None:
            return f"no champion yet: version {self.candidate_version} becomes champion"
        comparison = f"{self.metric} {self.candidate_score:.4f} vs champion v{self.champion_version} {self.champion_score:.4f}"
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


def apply_promotion(registry: MlflowRegistry, model_name: str, metric: str, candidate_version: str,
                    candidate_score: float, champion_version: str | None,
                    champion_score: float | None) -> PromotionDecision:
    """Decide, move the alias, and record the decision on the candidate's (and old champion's) version tags."""
    alias = decide_alias(candidate_score, champion_score)
    decision = PromotionDecision(model_name, metric, str(candidate_version), float(candidate_score),
                                 None if champion_version is None else str(champion_version),
                                 None if champion_score is None else float(champion_score), alias)
    when = datetime.now(timezone.utc).isoformat()
    if decision.promoted:
        registry.set_alias(model_name, CHAMPION, candidate_version)
        current_challenger = registry.version_by_alias(model_name, CHALLENGER)
        if current_challenger is not None and str(current_challenger.version) == str(candidate_version):
            registry.delete_alias(model_name, CHALLENGER)
        if champion_version is not None and str(champion_version) != str(candidate_version):
            registry.tag_version(model_name, champion_version, {"promotion.replaced_by": candidate_version,
                                                                "promotion.replaced_at": when})
    else:
        registry.set_alias(model_name, CHALLENGER, candidate_version)
    registry.tag_version(model_name, candidate_version, {
        "promotion.decision": alias,
        "promotion.reason": decision.reason,
        "promotion.decided_at": when,
        f"promotion.candidate_{metric}": f"{candidate_score:.6f}",
        **({f"promotion.champion_{metric}": f"{champion_score:.6f}"} if champion_score is not None else {}),
    })
    return decision
