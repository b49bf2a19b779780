"""The shared promotion gate against a registry it cannot read: no champion is inferred, nothing is promoted."""

import logging
from types import SimpleNamespace

import dagster as dg
import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from sklearn.dummy import DummyClassifier

from mlops_assets.common.champion import ChampionLoader
from mlops_assets.common.promotion import PromotionDecision, candidate_of_run, decide_promotion, promotion_gate
from resources.mlflow_registry import CHALLENGER, CHAMPION, MlflowRegistry
from tests.support import free_port


@pytest.fixture
def unreachable(monkeypatch, tmp_path):
    # Nothing listens on a port just handed out and released; MLflow's retries would only make the test slow.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://127.0.0.1:{free_port()}"
    import mlflow

    # Using the registry repoints MLflow's process-global store, through which registering a logged model
    # resolves it: put it back for the tests that follow.
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield MlflowRegistry(tracking_uri=uri, artifact_root=str(tmp_path))
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


@pytest.fixture(scope="module")
def models(registry):
    """Two logged models, answering 0 and 1, registered as many versions as a test needs (logging is the slow
    part)."""
    logged = {}
    for constant in (0, 1):
        with registry.start_run("gate-test") as run:
            info = registry.log_sklearn_model(
                DummyClassifier(strategy="constant", constant=constant).fit(np.zeros((2, 1)), [0, 1])
            )
        logged[constant] = (info.model_uri, run.info.run_id)
    return logged


@pytest.fixture
def new_version(registry, models):
    def register(name, constant=1):
        # MLflow resolves a logged model through its process-global store: point it here (an unreachable
        # registry used in the same test repoints it, as it would in a process with two registries).
        registry.activate()
        return str(registry.register(name, *models[constant]).version)

    return register


def test_missing_model_and_missing_alias_mean_no_champion(registry, new_version):
    assert registry.version_by_alias("never_registered", CHAMPION) is None
    version = new_version("no_alias_yet")  # the model exists, the alias does not
    assert registry.version_by_alias("no_alias_yet", CHAMPION) is None
    registry.set_alias("no_alias_yet", CHAMPION, version)
    assert str(registry.version_by_alias("no_alias_yet", CHAMPION).version) == version


def test_an_unreachable_registry_is_an_error_not_a_missing_champion(unreachable):
    with pytest.raises(MlflowException):
        unreachable.version_by_alias("titanic_modal", CHAMPION)
    with pytest.raises(MlflowException):
        ChampionLoader("titanic_modal").get(unreachable)


def test_the_gate_fails_with_error_and_promotes_nothing_when_the_registry_is_down(unreachable):
    result = promotion_gate(
        dg.build_asset_context(), unreachable, "titanic_modal", "accuracy", "7", 0.9, lambda champion: 0.5
    )
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["decision"].value == "none"
    assert "127.0.0.1" in result.metadata["reason"].value


def test_a_champion_that_cannot_be_scored_moves_no_alias(registry, new_version):
    name = "unscorable_champion"
    champion = new_version(name)
    registry.set_alias(name, CHAMPION, champion)
    candidate = new_version(name)

    def broken_scorer(version):
        raise OSError(f"artifacts of v{version.version} unreadable")

    result = promotion_gate(dg.build_asset_context(), registry, name, "accuracy", candidate, 0.99, broken_scorer)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert "unreadable" in result.description
    assert str(registry.version_by_alias(name, CHAMPION).version) == champion
    assert registry.version_by_alias(name, CHALLENGER) is None
    assert "promotion.decision" not in registry.client().get_model_version(name, candidate).tags


def test_a_lost_comparison_warns_and_a_win_passes(registry, new_version):
    name = "gate_rule"
    champion = new_version(name)
    registry.set_alias(name, CHAMPION, champion)
    worse = new_version(name)
    lost = promotion_gate(dg.build_asset_context(), registry, name, "accuracy", worse, 0.6, lambda v: 0.8)
    assert not lost.passed and lost.severity == dg.AssetCheckSeverity.WARN
    assert str(registry.version_by_alias(name, CHALLENGER).version) == worse
    better = new_version(name)
    won = promotion_gate(dg.build_asset_context(), registry, name, "accuracy", better, 0.9, lambda v: 0.8)
    assert won.passed and str(registry.version_by_alias(name, CHAMPION).version) == better
    assert won.metadata["champion_accuracy"].value == 0.8


def test_the_gate_names_its_check_and_says_why_in_the_run_log(registry, new_version, unreachable, caplog):
    """What an operator reads: the check the result belongs to, the log line, and a reason cut to what Dagster
    stores (1000 characters) when the champion's error is long."""
    caplog.set_level(logging.INFO, logger="test.gate")
    context = SimpleNamespace(log=logging.getLogger("test.gate"))  # the gate uses only the context's log

    def logged():
        lines = [(record.levelname, record.getMessage()) for record in caplog.records if record.name == "test.gate"]
        caplog.clear()
        return lines

    down = promotion_gate(context, unreachable, "titanic_modal", "accuracy", "7", 0.9, lambda champion: 0.5)
    reason = down.metadata["reason"].value
    assert down.check_name == "promotion_gate" and down.description == reason
    assert reason.startswith("no decision, no alias moved: MlflowException: ")
    assert logged() == [("ERROR", f"titanic_modal v7: {reason}")]
    assert set(down.metadata) == {"decision", "reason", "candidate_version"}
    assert down.metadata["candidate_version"].value == "7"

    name = "gate_words"
    registry.set_alias(name, CHAMPION, new_version(name))

    def long_error(version):
        raise OSError("unreadable " + "x" * 2000)

    candidate = new_version(name)
    failed = promotion_gate(context, registry, name, "accuracy", candidate, 0.9, long_error, "gate_b")
    assert failed.check_name == "gate_b" and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.description == failed.metadata["reason"].value
    assert len(failed.description) == 1000 and failed.description.startswith("no decision, no alias moved: OSError")
    assert logged()[0][1].endswith("x" * 100)  # the log keeps the whole reason

    won = promotion_gate(context, registry, name, "accuracy", candidate, 0.9, lambda version: 0.8, "gate_b")
    assert won.check_name == "gate_b" and won.passed and won.severity == dg.AssetCheckSeverity.WARN
    assert logged() == [("INFO", won.description)]
    assert won.description.startswith("not worse (accuracy 0.9000 vs champion v")


def test_a_first_gate_and_a_rerun_on_the_champion_score_no_champion(registry, new_version):
    """No champion yet, or the candidate is the champion (the gate re-run for the serving one): nothing to compare
    with, so the scorer is never called and the candidate becomes (or stays) champion."""
    name = "gate_first"
    context = SimpleNamespace(log=logging.getLogger("test.gate"))

    def never(version):
        raise AssertionError(f"scored v{version.version}, but there was no other champion to compare with")

    first = new_version(name)
    for reason in (
        f"no champion yet: version {first} becomes champion",
        f"version {first} is the champion already: it keeps serving",
    ):
        result = promotion_gate(context, registry, name, "accuracy", first, 0.7, never)
        assert result.passed and result.description == reason
        assert str(registry.version_by_alias(name, CHAMPION).version) == first
    # The decision the Pistachio gate reads whole.
    kept = PromotionDecision(name, "accuracy", first, 0.7, first, 0.7, CHAMPION)
    assert decide_promotion(registry, name, "accuracy", first, 0.7, never) == kept


def test_the_champion_loader_loads_each_version_once(registry, new_version):
    name = "loader_demo"
    first = new_version(name, constant=0)
    loads = []
    loader = ChampionLoader(name, load=lambda uri: loads.append(uri) or registry.load_sklearn(uri))
    assert loader.get(registry) is None  # no champion yet
    registry.set_alias(name, CHAMPION, first)
    held = loader.get(registry)
    assert held.number == first and loader.get(registry) is held
    second = new_version(name, constant=1)
    registry.set_alias(name, CHAMPION, second)
    assert loader.get(registry).number == second and loader.current.model.predict(np.zeros((1, 1)))[0] == 1
    assert loads == [f"models:/{name}/{first}", f"models:/{name}/{second}"]


def test_the_gate_rerun_on_the_serving_champion_keeps_it_and_its_decision(registry, new_version):
    # A skipped training re-emits the champion's own version: the gate must not compare it with itself, nor
    # overwrite the recorded decision that made it champion with a new "no champion yet" one.
    name = "rerun_champion"
    first = new_version(name)
    promotion_gate(dg.build_asset_context(), registry, name, "accuracy", first, 0.8, lambda champion: 0.0)
    second = new_version(name)
    won = promotion_gate(dg.build_asset_context(), registry, name, "accuracy", second, 0.9, lambda champion: 0.7)
    recorded = dict(registry.client().get_model_version(name, second).tags)

    again = promotion_gate(dg.build_asset_context(), registry, name, "accuracy", second, 0.9, lambda champion: 0.0)
    assert again.passed and "is the champion already" in again.description
    assert str(registry.version_by_alias(name, CHAMPION).version) == second
    assert dict(registry.client().get_model_version(name, second).tags) == recorded
    assert recorded["promotion.reason"] == won.description


MODEL_KEY = dg.AssetKey(["demo", "model"])
CANDIDATES = []  # what each run's gate found


@dg.asset(key=MODEL_KEY)
def demo_model(context):
    return dg.MaterializeResult(metadata={"model_version": int(context.run.tags["version"]), "auc": 0.75})


@dg.asset(key=["demo", "report"], deps=[MODEL_KEY])
def demo_report(context):
    if "interloper" in context.run.tags:
        # Another run (the daemon's eager retraining, say) writes the model while this run's gate waits for its
        # pool: the model's newest materialization is no longer this run's.
        context.instance.report_runless_asset_event(
            dg.AssetMaterialization(MODEL_KEY, metadata={"model_version": context.run.tags["interloper"], "auc": 0.5})
        )
    return dg.MaterializeResult(metadata={"rows": 3})


# After the report: the model's materialization is not the run's newest one when the gate reads it.
@dg.asset_check(asset=MODEL_KEY, name="gate", additional_deps=[demo_report])
def demo_gate(context):
    """Records what the gate of this run would compare: the candidate with its metric, or why there is none."""
    try:
        found = [candidate_of_run(context, MODEL_KEY, "auc"), candidate_of_run(context, MODEL_KEY)]
    except dg.Failure as exc:
        found = exc.description
    CANDIDATES.append(found)
    return dg.AssetCheckResult(passed=True)


def test_the_candidate_is_the_version_this_run_materialized_never_an_earlier_runs():
    instance = dg.DagsterInstance.ephemeral()
    CANDIDATES.clear()
    only_the_gate = dg.AssetSelection.checks(demo_gate)
    demo = [demo_model, demo_report, demo_gate]
    dg.materialize(demo, instance=instance, selection=only_the_gate, tags={"version": "1"})
    dg.materialize(demo, instance=instance, tags={"version": "7"})
    dg.materialize(demo, instance=instance, tags={"version": "8"})
    dg.materialize(demo, instance=instance, selection=only_the_gate, tags={"version": "9"})
    missing = "demo/model was not materialized in this run: no candidate to gate"
    assert CANDIDATES == [missing, [("7", 0.75), ("7", None)], [("8", 0.75), ("8", None)], missing]


def test_the_candidate_is_this_runs_version_when_another_run_wrote_the_model_since():
    instance = dg.DagsterInstance.ephemeral()
    CANDIDATES.clear()
    dg.materialize([demo_model, demo_report, demo_gate], instance=instance, tags={"version": "10", "interloper": "99"})
    newest = instance.fetch_materializations(MODEL_KEY, limit=1).records[0].asset_materialization
    assert newest.metadata["model_version"].value == "99"  # the interloper's is the newest
    assert CANDIDATES == [[("10", 0.75), ("10", None)]]
