"""The composed code location: every system's group, assets, checks and automation, and the single-writer design
of the DuckDB warehouse (pool limit 1 on every writer, steps of a run in one process)."""

from __future__ import annotations

import inspect
from pathlib import Path

import dagster as dg
import pytest
import yaml

from mlops_assets.common.constants import DUCKDB_POOL
from mlops_assets.common.runs import ONE_AT_A_TIME
from mlops_assets.systems import system_names
from resources.tables import DuckDBPandasTables
from tests.support import REPO_ROOT

# What each system must bring to the location: a subset, so a new asset does not break the test, but a system
# (or its promotion gate, golden check or automation) dropped from the definitions does. The whole graph is
# pinned by tests/test_graph_snapshot.py.
SYSTEMS = {
    "titanic": dict(
        assets={"raw_passengers", "feature_group", "training_split", "survival_model", "batch_prediction"},
        checks={("feature_group", "feature_group_valid"), ("survival_model", "promotion_gate")},
        jobs={"titanic_daily", "titanic_training", "titanic_feature_backfill"},
        schedules={"titanic_daily_schedule": "titanic_daily"},
        sensors={},
        automation={"training_split", "survival_model"},
    ),
    "steam": dict(
        assets={"raw_reviews", "reviews", "games", "sentiment_answers", "user_recommendations", "serving_snapshot"},
        checks={("reviews", "golden_sentiment_2015"), ("game_recommendations", "similarity_matches_own_tags")},
        jobs={"steam_refresh"},
        schedules={"steam_refresh_schedule": "steam_refresh"},
        sensors={},
    ),
    "scones": dict(
        assets={"cifar100_archive", "labelled_images", "image_classifier", "confidence_chart"},
        checks={("image_classifier", "promotion_gate"), ("labelled_images", "labelled_images_counts")},
        jobs={"scones_inference", "scones_training", "scones_monitoring"},
        schedules={"scones_monitoring_schedule": "scones_monitoring"},
        sensors={"scones_incoming_images": "scones_inference"},
    ),
    "pistachio": dict(
        assets={"weekly_snapshot_files", "raw_snapshot", "model_sweep", "registered_model", "champion_model_file"},
        checks={("registered_model", "champion_promotion"), ("raw_snapshot", "snapshot_schema")},
        jobs={"pistachio_training_job"},
        schedules={},
        sensors={"pistachio_snapshot_sensor": "pistachio_training_job"},
    ),
    "deploy": dict(
        # Deployments are partitions of these two assets, so N deployments add no asset keys.
        assets={"pinned_model", "deployment", "paris_airbnb_price_model_file", "titanic_survival_model_file"},
        checks={
            ("pinned_model", "predicts_raw_example_to_number"),
            ("pinned_model", "model_is_pipeline"),
            ("pinned_model", "schema_accepts_raw_example"),
        },
        jobs={"deploy_release_job", "deploy_demo_job"},
        schedules={},
        sensors={"deploy_sensor": "deploy_release_job"},
    ),
}


@pytest.fixture(scope="module")
def definitions(tmp_path_factory) -> dg.Definitions:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(tmp_path_factory.mktemp("mlops")))
        from mlops_assets.definitions import defs

        yield defs()


@pytest.fixture(scope="module")
def repository(definitions):
    return definitions.get_repository_def()


def asset_defs(repository) -> list[dg.AssetsDefinition]:
    unique = {
        id(node.assets_def): node.assets_def
        for node in (repository.asset_graph.get(key) for key in repository.asset_graph.get_all_asset_keys())
    }
    return [a for a in unique.values() if a.is_executable]


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_every_system_is_wired_into_the_location(definitions, repository, system):
    expected = SYSTEMS[system]
    graph = repository.asset_graph
    group = {key.path[-1] for key in graph.get_all_asset_keys() if graph.get(key).group_name == system}
    assert expected["assets"] <= group, f"{system} lacks assets {expected['assets'] - group}"
    checks = {(key.asset_key.path[-1], key.name) for key in graph.asset_check_keys if key.asset_key.path[0] == system}
    assert expected["checks"] <= checks, f"{system} lacks checks {expected['checks'] - checks}"
    jobs = {job.name for job in repository.get_all_jobs()}
    assert expected["jobs"] <= jobs, f"{system} lacks jobs {expected['jobs'] - jobs}"
    for name in expected["jobs"]:  # a job runs its own system's assets
        job = repository.get_job(name)
        targets = {key.path[0] for key in job.asset_layer.executable_asset_keys} if job.asset_layer else set()
        assert targets <= {system}, f"{name} materializes assets of {targets - {system}}"
    schedules = {s.name: s.job_name for s in repository.schedule_defs}
    # Automation-condition sensors target assets, not jobs.
    sensors = {s.name: [j.name for j in s.jobs] for s in repository.sensor_defs if s.has_jobs}
    for name, job in expected["schedules"].items():
        assert schedules.get(name) == job, f"schedule {name} should run {job}"
    for name, job in expected["sensors"].items():
        assert sensors.get(name) == [job], f"sensor {name} should run {job}"
    automated = {
        key.path[-1]
        for key in graph.get_all_asset_keys()
        if key.path[0] == system and graph.get(key).automation_condition is not None
    }
    assert expected.get("automation", set()) <= automated, f"{system} lacks automation conditions"


@pytest.mark.parametrize("system", system_names())
def test_every_discovered_system_has_its_group_checks_and_automation(repository, system):
    """Whatever systems exist (a new one included): a group of its own under its prefix, at least one asset
    check, and something that materializes it on its own (a schedule, a sensor or an automation condition)."""
    graph = repository.asset_graph
    keys = [key for key in graph.get_all_asset_keys() if graph.get(key).group_name == system]
    assert keys, f"no asset in group {system}"
    assert all(key.path[0] == system for key in keys), f"{system} assets outside the prefix [{system}]"
    assert any(key.asset_key.path[0] == system for key in graph.asset_check_keys), f"{system} has no asset check"
    jobs = {
        job.name
        for job in repository.get_all_jobs()
        if job.asset_layer and any(key.path[0] == system for key in job.asset_layer.executable_asset_keys)
    }
    instigated = {s.job_name for s in repository.schedule_defs} | {
        j.name for s in repository.sensor_defs if s.has_jobs for j in s.jobs
    }
    conditions = [key for key in keys if graph.get(key).automation_condition is not None]
    assert jobs & instigated or conditions, f"nothing materializes {system} on its own"
    if conditions:  # an automation condition needs a sensor evaluating it, running from the start
        evaluating = [
            s
            for s in repository.sensor_defs
            if isinstance(s, dg.AutomationConditionSensorDefinition)
            and set(conditions) <= s.asset_selection.resolve(graph)
        ]
        assert evaluating and all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in evaluating)


def writes_through_io_manager(assets_def: dg.AssetsDefinition) -> bool:
    """True unless the asset only reports a MaterializeResult: any Output it returns goes to the IO manager."""
    fn = assets_def.op.compute_fn.decorated_fn
    annotation = inspect.signature(fn).return_annotation
    if annotation is dg.MaterializeResult:
        return False
    if inspect.isgeneratorfunction(fn):
        return "Output(" in inspect.getsource(fn)
    return True


def test_every_warehouse_writer_is_in_the_single_writer_pool(definitions, repository):
    # The default IO manager is the warehouse: whatever it stores is a DuckDB write.
    assert isinstance(definitions.resources["io_manager"], DuckDBPandasTables)
    writers = {
        a.key.to_user_string(): a.op.pool
        for a in asset_defs(repository)
        if (a.get_io_manager_key_for_asset_key(a.key) == "io_manager" and writes_through_io_manager(a))
        or "warehouse" in a.required_resource_keys
    }
    assert len(writers) >= 25  # the tables of four systems: the rule below is not checked on an empty set
    outside = {key: pool for key, pool in writers.items() if pool != DUCKDB_POOL}
    assert not outside, f"warehouse writers outside the {DUCKDB_POOL} pool: {outside}"
    ops = {
        (job.name, node.name): node.pool
        for job in repository.get_all_jobs()
        for node in job.graph.node_defs
        if isinstance(node, dg.OpDefinition) and "warehouse" in node.required_resource_keys
    }
    assert any(job == "scones_inference" for job, _ in ops)  # the image workflow's ops write captures
    assert {op: pool for op, pool in ops.items() if pool != DUCKDB_POOL} == {}


def test_the_pool_admits_one_step_and_runs_execute_in_one_process(definitions, repository):
    instance = yaml.safe_load(Path(REPO_ROOT, "dagster.yaml").read_text())
    pools = instance["concurrency"]["pools"]
    assert pools.get(DUCKDB_POOL, {}).get("limit", pools["default_limit"]) == 1
    assert definitions.executor is dg.in_process_executor
    multiprocess = {
        job.name: job.executor_def.name
        for job in repository.get_all_jobs()
        if job.executor_def.name != dg.in_process_executor.name
    }
    assert multiprocess == {}, f"jobs whose steps would run in parallel processes: {multiprocess}"


def test_pistachio_runs_are_limited_to_one_at_a_time_by_the_instance(repository, tmp_path, monkeypatch):
    """The instance that dev.py up copies loads, and its run queue admits one run per `mlops/one_at_a_time`
    value: both Pistachio jobs carry that tag, so weeks are trained and promoted in order."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text(Path(REPO_ROOT, "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    limit = {entry["key"]: entry for entry in limits}[ONE_AT_A_TIME]
    assert limit["limit"] == 1 and limit["value"] == {"applyLimitPerUniqueValue": True}
    for job in ("pistachio_training_job", "pistachio_snapshot_files_job"):
        assert repository.get_job(job).tags.get(ONE_AT_A_TIME) == "pistachio", job
