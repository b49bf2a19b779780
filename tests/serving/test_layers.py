"""The layers: serving reads each system's Dagster-free contract module and never imports an asset module.

A fresh interpreter imports `serving.app` and builds the app as uvicorn does; every `mlops_assets` module that it
loaded must be free of top-level Dagster imports (the asset, check, automation and definitions modules all
have one), and every system that serves something has its contract module loaded, naming the system.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_assets.systems import system_names
from tests.support import REPO_ROOT, standalone_environment

DAGSTER_IMPORT = re.compile(r"^(import dagster|from dagster)\b", re.M)
PROBE = """
import json, sys
import serving.app
serving.app.create_app()
print("LOADED " + json.dumps(sorted(m for m in sys.modules if m == "mlops_assets" or m.startswith("mlops_assets."))))
"""


def imports_dagster(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    return bool(DAGSTER_IMPORT.search(Path(spec.origin).read_text()))


@pytest.fixture(scope="module")
def loaded_by_serving(tmp_path_factory) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "MLFLOW_", "AWS_"))}
    env.update(standalone_environment(tmp_path_factory.mktemp("layers"), None))
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("LOADED "))
    return json.loads(line.removeprefix("LOADED "))


def test_serving_imports_no_asset_module(loaded_by_serving):
    assert "mlops_assets.systems" in loaded_by_serving  # the routers were found through the discovery
    dagster_modules = [m for m in loaded_by_serving if imports_dagster(m)]
    assert dagster_modules == [], f"serving imported asset-layer modules: {dagster_modules}"


@pytest.mark.parametrize("system", system_names())
def test_each_system_has_a_dagster_free_contract_that_its_router_reads(loaded_by_serving, system):
    contract = f"mlops_assets.{system}.constants"
    assert not imports_dagster(contract), f"{contract} imports Dagster"
    assert importlib.import_module(contract).SYSTEM == system  # the name decides prefix, group and router
    if importlib.util.find_spec(f"serving.{system}") is not None:
        assert contract in loaded_by_serving, f"serving/{system}.py does not read its contract {contract}"


def test_contract_modules_load_no_dagster_even_indirectly():
    # The text check above sees only a contract's own imports; this one sees what importing it loads (a contract
    # reaching `resources.data_source` for a DatasetFile would bring all of Dagster with it).
    contracts = [f"mlops_assets.{system}.constants" for system in system_names()]
    probe = (
        "import importlib, json, sys\n"
        "loaded = {}\n"
        "for name in sys.argv[1:]:\n"
        "    before = set(sys.modules)\n"
        "    importlib.import_module(name)\n"
        "    loaded[name] = sorted(m for m in set(sys.modules) - before if m.split('.')[0] == 'dagster')[:3]\n"
        "print('LOADED ' + json.dumps(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *contracts], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("LOADED "))
    loaded = json.loads(line.removeprefix("LOADED "))
    assert {name: modules for name, modules in loaded.items() if modules} == {}
