"""The sweep on a small grid with a temporary MLflow: nested runs, metrics, convergence, one model artifact."""

import pandas as pd
import pytest

from mlops_assets.pistachio.snapshot_files import read_snapshot
from mlops_assets.pistachio.sweep import Config, SplitData, best_result, fit_config, full_grid, split_snapshot
from mlops_assets.pistachio.tracking import run_sweep
from resources import build_registry


@pytest.fixture
def splits(data_dir) -> pd.DataFrame:
    frame, report = read_snapshot((data_dir / "pistachio" / "pistachio.csv").read_bytes(), "pistachio.csv")
    assert report.ok
    return split_snapshot(frame)


def test_split_is_60_20_20_and_reproducible(splits, data_dir):
    assert splits["split"].value_counts().to_dict() == {"train": 1030, "val": 344, "test": 344}
    frame, _ = read_snapshot((data_dir / "pistachio" / "pistachio.csv").read_bytes(), "again.csv")
    pd.testing.assert_frame_equal(split_snapshot(frame), splits)


def test_full_grid_is_the_originals_96_configurations():
    grid = full_grid()
    assert len(grid) == 96 and len(set(grid)) == 96
    assert {c.C for c in grid} == {1, 2, 4, 8} and {c.solver for c in grid} == {"lbfgs", "liblinear", "sag", "saga"}


def test_originals_reported_best_configuration_reproduces(splits):
    result = fit_config(Config(1.0, 20, "liblinear"), SplitData.from_frame(splits))
    assert round(result.val_auc, 3) == 0.872  # the original's published best validation AUC


def test_sweep_logs_nested_runs_and_records_convergence(settings, splits):
    registry = build_registry(settings)
    grid = [Config(1.0, 20, "sag"), Config(1.0, 100, "liblinear"), Config(2.0, 500, "lbfgs")]
    outcome = run_sweep(registry, grid, SplitData.from_frame(splits), "week_1", "dagster-run-1")

    assert outcome.best is best_result(outcome.results)
    sag = outcome.results[0]
    assert not sag.converged and "max_iter" in sag.warning  # sag on unscaled features: recorded, not hidden

    client = registry.client()
    parent = client.get_run(outcome.parent_run_id)
    assert parent.data.tags["snapshot"] == "week_1" and parent.data.metrics["runs"] == 3
    assert parent.data.metrics["convergence_warnings"] >= 1
    for result, run_id in zip(outcome.results, outcome.run_ids, strict=False):
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == outcome.parent_run_id
        assert run.data.tags["dagster_run_id"] == "dagster-run-1" and run.data.tags["snapshot"] == "week_1"
        assert run.data.params == {
            "C": f"{result.config.C:g}",
            "max_iter": str(result.config.max_iter),
            "solver": result.config.solver,
        }
        assert run.data.metrics["val_AUC"] == pytest.approx(result.val_auc)
        assert run.data.metrics["test_AUC"] == pytest.approx(result.test_auc)
        assert run.data.metrics["val_AUC_proba"] >= run.data.metrics["val_AUC"] - 0.2
        assert run.data.tags["converged"] == str(result.converged).lower()
        assert ("convergence_warning" in run.data.tags) == (not result.converged)

    logged = registry.activate().search_logged_models(experiment_ids=[outcome.experiment_id], output_format="list")
    assert [model.source_run_id for model in logged] == [outcome.best_run_id]
