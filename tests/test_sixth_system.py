"""docs/architecture.md's worked example, performed: a sixth system is new files only.

The platform's packages are copied to a temporary folder, the example's files are written into the copy exactly
as the page shows them, and one fresh interpreter in the copy checks that the new system is in the code
location's graph (group, check, job, schedule), runs its bootstrap through `python -m mlops_assets.bootstrap
--only tally`'s entry point, and is served by the app (its route answers the bootstrapped total, the index links
it). No file of the copy other than the example's own is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT, standalone_environment

PACKAGES = ("mlops_assets", "resources", "sensors", "serving")
EXAMPLE = re.compile(r"^```python (\S+)\n(.*?)^```", re.S | re.M)

PROBE = """
import json, sys
from pathlib import Path

from fastapi.testclient import TestClient

from mlops_assets import bootstrap
from mlops_assets.definitions import defs
from mlops_assets.systems import system_names
from serving.app import create_app

assert Path(bootstrap.__file__).resolve().is_relative_to(Path.cwd()), "the copy's packages must be the ones loaded"
repository = defs().get_repository_def()
graph = repository.asset_graph
group = sorted(k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "tally")
checks = sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys
                if k.asset_key.path[0] == "tally")
schedules = {s.name: s.job_name for s in repository.schedule_defs}
code = bootstrap.main(["--only", "tally"])
app = create_app(poll_seconds=3600)
with TestClient(app) as api:
    app.state.ctx.poller.refresh_all()
    served = api.get("/tally/total")
    index = api.get("/").text
print("RESULT " + json.dumps({
    "systems": system_names(), "group": group, "checks": checks, "schedule": schedules.get("tally_refresh_schedule"),
    "bootstrap": code, "status": served.status_code, "body": served.json(), "linked": 'href="/tally/total"' in index,
}))
"""


def example_files() -> dict[str, str]:
    text = (REPO_ROOT / "docs" / "architecture.md").read_text()
    return {path: body for path, body in EXAMPLE.findall(text)}


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def test_the_documented_sixth_system_plugs_in_with_new_files_only(tmp_path):
    files = example_files()
    assert set(files) == {
        "mlops_assets/tally/__init__.py",
        "mlops_assets/tally/constants.py",
        "mlops_assets/tally/definitions.py",
        "mlops_assets/tally/bootstrap.py",
        "serving/tally.py",
    }
    copy = tmp_path / "platform"
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    before = digests(copy)
    for relative, body in files.items():
        target = copy / relative
        assert not target.exists(), f"the example would overwrite {relative}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "MLFLOW_", "AWS_"))}
    env.update(standalone_environment(tmp_path / "mlops", None))
    (tmp_path / "dagster_home").mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", tmp_path / "dagster_home" / "dagster.yaml")
    env.update(DAGSTER_HOME=str(tmp_path / "dagster_home"), PYTHONPATH=str(copy))
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=copy, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    found = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))[7:])

    assert "tally" in found["systems"]
    # The platform adds its inference log to every system's group.
    assert found["group"] == ["tally/inference_log", "tally/total"]
    assert found["checks"] == ["tally/total:total_is_published"]
    assert found["schedule"] == "tally_refresh"
    assert found["bootstrap"] == 0, (tmp_path / "mlops" / "logs" / "bootstrap-tally.log").read_text()[-3000:]
    assert (found["status"], found["body"]) == (200, {"total": 16})
    assert found["linked"]
    after = digests(copy)
    assert {path: digest for path, digest in after.items() if before.get(path) != digest} == {
        path: hashlib.sha256(body.encode()).hexdigest() for path, body in files.items()
    }


@pytest.mark.parametrize("path", ["mlops_assets/tally", "serving/tally.py"])
def test_the_example_is_not_part_of_the_platform(path):
    # The example lives in the docs only: a `tally` folder in the repository would make the test above vacuous.
    assert not (REPO_ROOT / path).exists()
