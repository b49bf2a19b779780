"""The original's promotion rule on aliases: first model, worse model, equal model, better model."""

from mlops_assets.pistachio.checks import promote
from mlops_assets.pistachio.constants import MODEL_NAME
from resources import CHALLENGER, CHAMPION, build_registry


def register(registry) -> str:
    return str(registry.register(MODEL_NAME, "file:///nonexistent/model", run_id=None).version)


def aliases(registry) -> dict[str, str]:
    return {
        alias: str(v.version)
        for alias in (CHAMPION, CHALLENGER)
        if (v := registry.version_by_alias(MODEL_NAME, alias)) is not None
    }


def test_promotion_rule_all_branches(settings):
    registry = build_registry(settings)
    # What the champion scores on each candidate's holdout (the gate re-scores it; these stand for those scores).
    scores: dict[str, float] = {}

    def score_champion(version) -> float:
        return scores[str(version.version)]

    first = register(registry)
    scores[first] = 0.85
    decision = promote(registry, first, 0.85, score_champion)
    assert decision.alias == CHAMPION and decision.champion_version is None
    assert aliases(registry) == {CHAMPION: first}

    worse = register(registry)
    decision = promote(registry, worse, 0.80, score_champion)
    assert decision.alias == CHALLENGER and (decision.candidate_score, decision.champion_score) == (0.80, 0.85)
    assert aliases(registry) == {CHAMPION: first, CHALLENGER: worse}
    tags = registry.client().get_model_version(MODEL_NAME, worse).tags
    assert tags["promotion.decision"] == CHALLENGER
    assert tags["promotion.candidate_val_auc"] == "0.800000" and tags["promotion.champion_val_auc"] == "0.850000"

    tie = register(registry)
    decision = promote(registry, tie, 0.85, score_champion)
    assert decision.alias == CHAMPION  # ties go to the newer model, as in the original
    assert aliases(registry)[CHAMPION] == tie
    assert registry.client().get_model_version(MODEL_NAME, first).tags["promotion.replaced_by"] == tie

    scores[tie] = 0.84  # on the next candidate's holdout, the champion scores lower than that candidate
    better = register(registry)
    assert promote(registry, better, 0.90, score_champion).alias == CHAMPION
    assert aliases(registry)[CHAMPION] == better

    # Re-running the gate for the serving champion keeps it (no comparison against itself).
    assert promote(registry, better, 0.90, score_champion).alias == CHAMPION
    assert aliases(registry)[CHAMPION] == better
