"""The code location loads as Dagster's own tooling loads it."""

import os
import subprocess
import sys

from tests.support import REPO_ROOT


def test_code_location_validates(tmp_path):
    env = {
        **os.environ,
        "MLOPS_HOME": str(tmp_path / "mlops"),
        "DAGSTER_HOME": str(tmp_path),
        "GIT_PYTHON_REFRESH": "quiet",
    }
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    result = subprocess.run(
        [dagster, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_every_system_has_its_group_and_automation(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    from mlops_assets.definitions import defs

    definitions = defs()
    groups = {spec.group_name for spec in definitions.resolve_all_asset_specs()}
    assert "titanic" in groups
    assert definitions.resolve_job_def("titanic_daily").partitions_def is not None
    assert {s.name for s in definitions.schedules} >= {"titanic_daily_schedule"}
