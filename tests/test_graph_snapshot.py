"""The whole graph, pinned: asset keys, groups, kinds, checks, automation conditions, freshness policies, jobs,
schedules and sensors of the code location, compared with `__snapshots__/test_graph_snapshot.ambr`.

A change to the graph shows up here as a readable diff. When the change is intended, refresh the file with
`python3 dev.py test tests/test_graph_snapshot.py --snapshot-update` and commit it with the change.
"""

from __future__ import annotations

import dagster as dg
import pytest


def condition_label(condition: dg.AutomationCondition | None) -> str | None:
    if condition is None:
        return None
    return condition.get_label() or condition.name


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(tmp_path_factory.mktemp("mlops")))
        from mlops_assets.definitions import defs

        yield defs().get_repository_def()


def graph_of(repository) -> dict:
    graph = repository.asset_graph
    checks: dict[dg.AssetKey, list[str]] = {}
    for check in graph.asset_check_keys:
        checks.setdefault(check.asset_key, []).append(check.name)
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        spec = node.assets_def.specs_by_key[key]
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(spec.kinds),
            "checks": sorted(checks.get(key, [])),
            "automation": condition_label(node.automation_condition),
            "freshness": dg.serialize_value(spec.freshness_policy) if spec.freshness_policy else None,
            "partitions": type(node.partitions_def).__name__ if node.partitions_def else None,
        }
    jobs = {
        job.name: sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys) if job.asset_layer else []
        for job in repository.get_all_jobs()
        if not job.name.startswith("__")
    }
    schedules = {
        s.name: {"job": s.job_name, "cron": s.cron_schedule, "default": s.default_status.value}
        for s in repository.schedule_defs
    }
    sensors = {}
    for sensor in repository.sensor_defs:
        if sensor.has_jobs:
            target = [job.name for job in sensor.jobs]
        elif sensor.asset_selection is not None:
            target = sorted(k.to_user_string() for k in sensor.asset_selection.resolve(graph))
        else:  # a sensor naming its job by name (resolved by the repository)
            target = [sensor.job_name]
        sensors[sensor.name] = {
            "type": type(sensor).__name__,
            "target": target,
            "default": sensor.default_status.value,
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
        }
    return {
        "assets": assets,
        "jobs": dict(sorted(jobs.items())),
        "schedules": dict(sorted(schedules.items())),
        "sensors": dict(sorted(sensors.items())),
    }


def test_the_graph_matches_its_snapshot(repository, snapshot):
    assert graph_of(repository) == snapshot
