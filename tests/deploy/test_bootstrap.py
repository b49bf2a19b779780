"""The bootstrap: both demo deployments trained, uploaded, created as data, checked and published in-process."""

from __future__ import annotations

import dagster as dg

from mlops_assets import deploy
from mlops_assets.deploy import bootstrap as deploy_bootstrap
from mlops_assets.deploy.models import read_pin
from mlops_assets.deploy.records import list_records
from resources import build_object_store, build_resources
from resources.model_bucket import build_model_bucket
from resources.snapshots import current_snapshot


def test_bootstrap_deploys_both_demos_as_ordinary_deployments(settings, data_dir):
    defs = dg.Definitions.merge(
        dg.Definitions(resources=build_resources(settings), executor=dg.in_process_executor), deploy.defs
    )
    instance = dg.DagsterInstance.ephemeral()
    deploy_bootstrap.bootstrap(defs, instance)

    store, bucket = build_object_store(settings), build_model_bucket(settings)
    assert set(list_records(store)) == {"titanic_survival", "paris_airbnb_price"}
    assert set(instance.get_dynamic_partitions("deployments")) == {"titanic_survival", "paris_airbnb_price"}
    for name in ("titanic_survival", "paris_airbnb_price"):
        pin = read_pin(store, name)
        assert pin is not None and pin.tag.startswith("platform-")
        pointer = current_snapshot(store, f"deploy/{name}")
        assert pointer["manifest"]["version_id"] == pin.version_id
    assert {v.key for v in bucket.list_versions(bucket.default_bucket)} == {
        "titanic_survival.skops",
        "paris_airbnb_price.skops",
    }
    evaluations = [
        e
        for run in instance.get_runs()
        for e in instance.all_logs(run.run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert len(evaluations) == 6 and all(e.dagster_event.event_specific_data.passed for e in evaluations)
