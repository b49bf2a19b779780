from datetime import UTC, datetime

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier

from mlops_assets.common.promotion import PromotionDecision, apply_promotion, decide_alias
from resources.mlflow_registry import CHALLENGER, CHAMPION


def test_rule():
    assert decide_alias(0.7, None) == CHAMPION
    assert decide_alias(0.7, 0.8) == CHALLENGER
    assert decide_alias(0.8, 0.8) == CHAMPION  # ties go to the newer model
    assert decide_alias(0.9, 0.8) == CHAMPION


@pytest.fixture(scope="module")
def model_uri(registry):
    """One logged model, registered as many versions as a test needs (logging is the slow part)."""
    with registry.start_run("promotion-test") as run:
        info = registry.log_sklearn_model(DummyClassifier().fit(np.zeros((2, 1)), [0, 1]))
    return info.model_uri, run.info.run_id


def new_version(registry, model_uri, name):
    uri, run_id = model_uri
    return registry.register(name, uri, run_id, tags={"dagster_run_id": "r"}).version


def promotion_tags(registry, name, version) -> dict[str, str]:
    tags = registry.client().get_model_version(name, version).tags
    return {key: value for key, value in tags.items() if key.startswith("promotion.")}


def alias_version(registry, name, alias):
    version = registry.version_by_alias(name, alias)
    return None if version is None else version.version


def values(metadata) -> dict:
    return {key: value.value for key, value in metadata.items()}


def decided_at(tags) -> datetime:
    """The decision's time, which must be an explicit UTC timestamp (a naive local one reads wrong elsewhere)."""
    moment = datetime.fromisoformat(tags.pop("promotion.decided_at"))
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0
    return moment


def test_first_worse_and_equal_candidates(registry, model_uri):
    name = "promotion_demo"
    v1 = new_version(registry, model_uri, name)
    first = apply_promotion(registry, name, "auc", v1, 0.80, None, None)
    assert first.promoted and registry.version_by_alias(name, CHAMPION).version == v1

    v2 = new_version(registry, model_uri, name)
    worse = apply_promotion(registry, name, "auc", v2, 0.70, v1, 0.80)
    assert not worse.promoted and "worse" in worse.reason
    assert registry.version_by_alias(name, CHAMPION).version == v1
    assert registry.version_by_alias(name, CHALLENGER).version == v2
    assert registry.client().get_model_version(name, v2).tags["promotion.decision"] == CHALLENGER

    v3 = new_version(registry, model_uri, name)
    equal = apply_promotion(registry, name, "auc", v3, 0.80, v1, 0.80)
    assert equal.promoted
    assert registry.version_by_alias(name, CHAMPION).version == v3
    assert registry.client().get_model_version(name, v1).tags["promotion.replaced_by"] == str(v3)
    assert equal.metadata()["champion_auc"].value == 0.80
    # Another version's promotion leaves the challenger where it was: v2 is still the one to compare against.
    assert alias_version(registry, name, CHALLENGER) == v2


def test_each_decision_is_recorded_in_words_on_the_versions_and_in_the_metadata(registry, model_uri):
    """What a user reads in the MLflow UI (version tags) and in Dagster (the check's metadata) after each gate."""
    name = "promotion_record"
    started = datetime.now(UTC)
    v1 = new_version(registry, model_uri, name)
    first = apply_promotion(registry, name, "auc", int(v1), 0.8, None, None)
    assert first == PromotionDecision(name, "auc", str(v1), 0.8, None, None, CHAMPION)
    assert first.reason == f"no champion yet: version {v1} becomes champion"
    assert values(first.metadata()) == {
        "decision": CHAMPION,
        "reason": first.reason,
        "candidate_version": str(v1),
        "candidate_auc": 0.8,
    }
    tags = promotion_tags(registry, name, v1)
    assert started <= decided_at(tags) <= datetime.now(UTC)
    assert tags == {
        "promotion.decision": CHAMPION,
        "promotion.reason": first.reason,
        "promotion.candidate_auc": "0.800000",
    }

    v2 = new_version(registry, model_uri, name)
    worse = apply_promotion(registry, name, "auc", v2, 0.71234, v1, 0.8)
    assert worse == PromotionDecision(name, "auc", str(v2), 0.71234, str(v1), 0.8, CHALLENGER)
    assert worse.reason == (
        f"worse (auc 0.7123 vs champion v{v1} 0.8000): version {v2} becomes challenger, champion kept"
    )
    assert values(worse.metadata()) == {
        "decision": CHALLENGER,
        "reason": worse.reason,
        "candidate_version": str(v2),
        "candidate_auc": 0.71234,
        "previous_champion_version": str(v1),
        "champion_auc": 0.8,
    }
    tags = promotion_tags(registry, name, v2)
    decided_at(tags)
    assert tags == {
        "promotion.decision": CHALLENGER,
        "promotion.reason": worse.reason,
        "promotion.candidate_auc": "0.712340",
        "promotion.champion_auc": "0.800000",
    }
    assert "promotion.replaced_by" not in promotion_tags(registry, name, v1)  # the champion was kept

    # The challenger wins a later gate: it becomes champion, stops being challenger, and the old champion records
    # by whom and when it was replaced.
    better = apply_promotion(registry, name, "auc", v2, 0.9, v1, 0.8)
    assert better.reason == (f"not worse (auc 0.9000 vs champion v{v1} 0.8000): version {v2} becomes champion")
    assert (alias_version(registry, name, CHAMPION), alias_version(registry, name, CHALLENGER)) == (v2, None)
    tags = promotion_tags(registry, name, v2)
    when = tags["promotion.decided_at"]
    assert (tags["promotion.decision"], tags["promotion.reason"]) == (CHAMPION, better.reason)
    old = promotion_tags(registry, name, v1)
    assert (old["promotion.replaced_by"], old["promotion.replaced_at"]) == (str(v2), when)


def test_the_gate_rerun_on_the_champion_itself_does_not_mark_it_replaced(registry, model_uri):
    name = "promotion_rerun"
    v1 = new_version(registry, model_uri, name)
    apply_promotion(registry, name, "auc", v1, 0.8, None, None)
    again = apply_promotion(registry, name, "auc", v1, 0.8, v1, 0.8)
    assert again.promoted and alias_version(registry, name, CHAMPION) == v1
    assert "promotion.replaced_by" not in promotion_tags(registry, name, v1)
