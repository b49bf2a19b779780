"""The gate compares on one holdout, and an unchanged week is not trained again.

Same holdout: the champion's score that the gate recorded on a candidate is the champion re-scored on that
candidate's validation split, not the AUC recorded on the champion (measured on its own, different, week).
Skip: materializing a week again with the same code, grid and data fits nothing and registers nothing.
"""

from __future__ import annotations

import dagster as dg
import pytest

from mlops_assets.common.training import FINGERPRINT_TAG, SKIPPED, TRAINED
from mlops_assets.pistachio.automation import TRAINING_JOB
from mlops_assets.pistachio.checks import validation_auc
from mlops_assets.pistachio.constants import MODEL_NAME, VALIDATION_AUC_TAG
from mlops_assets.pistachio.model_file import load_pipeline
from mlops_assets.pistachio.sweep import SplitData
from resources import CHAMPION
from resources.mlflow_registry import model_uri
from tests.pistachio.conftest import SMALL_GRID


def versions(registry) -> list:
    found = registry.client().search_model_versions(f"name='{MODEL_NAME}'")
    return sorted(found, key=lambda v: int(v.version))


def splits_of(deployment, snapshot: str):
    with deployment.resource("warehouse").get_connection() as conn:
        frame = conn.execute("select * from pistachio.snapshot_splits where snapshot = ?", [snapshot]).df()
    return SplitData.from_frame(frame)


def test_the_champion_is_scored_on_the_candidates_validation_split(bootstrapped):
    registry = bootstrapped.resource("mlflow")
    compared = []
    for version in versions(registry)[1:]:  # the first week had no champion to compare with
        incumbent = next(
            v
            for v in reversed(versions(registry))
            if int(v.version) < int(version.version) and v.tags["promotion.decision"] == CHAMPION
        )
        model = load_pipeline(registry, model_uri(MODEL_NAME, incumbent.version))
        rescored = validation_auc(model, splits_of(bootstrapped, version.tags["Training Datafile"]))
        recorded = float(version.tags["promotion.champion_val_auc"])
        assert recorded == pytest.approx(rescored, abs=1e-6)
        compared.append((recorded, float(incumbent.tags[VALIDATION_AUC_TAG])))
    assert len(compared) == 2
    # The weeks' splits differ, so the champion's own recorded AUC is not what the gate compared with.
    assert any(recorded != pytest.approx(own, abs=1e-6) for recorded, own in compared)


def test_materializing_an_unchanged_week_again_trains_and_registers_nothing(bootstrapped):
    registry = bootstrapped.resource("mlflow")
    client = registry.client()
    experiment = client.get_experiment_by_name(MODEL_NAME).experiment_id
    week = "pistachio_20230724"
    before = versions(registry)
    runs_before = len(client.search_runs([experiment], max_results=1000))
    champion_before = registry.version_by_alias(MODEL_NAME, CHAMPION).version

    result = bootstrapped.defs.resolve_job_def(TRAINING_JOB).execute_in_process(
        instance=bootstrapped.instance, partition_key=week
    )
    assert result.success
    assert [v.version for v in versions(registry)] == [v.version for v in before]  # no new registry version
    assert len(client.search_runs([experiment], max_results=1000)) == runs_before  # no new fit, no new run

    week_version = next(v for v in before if v.tags["Training Datafile"] == week)
    materializations = {
        e.asset_key.path[-1]: e.event_specific_data.materialization for e in result.get_asset_materialization_events()
    }
    for asset in ("model_sweep", "registered_model"):
        metadata = materializations[asset].metadata
        assert metadata["training"].value == SKIPPED, asset
        assert metadata["model_version"].value == str(week_version.version)
        assert metadata[FINGERPRINT_TAG].value == week_version.tags[FINGERPRINT_TAG]
    assert isinstance(materializations["registered_model"].metadata["val_auc"].value, float)
    assert materializations["model_sweep"].metadata["dagster/row_count"].value == len(SMALL_GRID)  # the same table
    # The same data version as the run that trained it: nothing downstream becomes stale.
    records = dg.AssetRecordsFilter(asset_key=dg.AssetKey(["pistachio", "registered_model"]), asset_partitions=[week])
    trained = bootstrapped.instance.fetch_materializations(records, limit=2).records
    assert [r.asset_materialization.metadata["training"].value for r in trained] == [SKIPPED, TRAINED]
    assert len({r.asset_materialization.tags["dagster/data_version"] for r in trained}) == 1
    assert registry.version_by_alias(MODEL_NAME, CHAMPION).version == champion_before
