"""Loading the code location or the serving app imports no heavy library; each is imported where it is used.

Every run worker, UI reload, `dagster` command and API start pays the imports of the code location, so an
`import sklearn.ensemble` at the top of one asset module costs every one of them seconds. One fresh interpreter
loads the code location (`defs()`), builds the serving app (`create_app()` loads no model: the poller does, in
the background) and then imports every module of the four packages; a finder at the head of `sys.meta_path`
records which of our modules first asked for each heavy package, so a failure names the import chain.

pandas, numpy, pyarrow and DuckDB are on the list too (a third of the load before): Dagster resolves the
annotations of asset functions when the code location loads, so theirs name no pandas type (the I/O manager's
default load type is the DataFrame), and the DuckDB pandas I/O manager is built when a run first uses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.support import REPO_ROOT, standalone_environment

PACKAGES = ("mlops_assets", "resources", "sensors", "serving")
HEAVY = (
    "skops",
    "skl2onnx",
    "onnx",
    "onnxruntime",
    "mlflow",
    "matplotlib",
    "textblob",
    "sklearn",
    "scipy",
    "PIL",
    "evidently",
    "boto3",
    "botocore",
    "dagster_aws",
    "deltalake",
    "joblib",
    "pandas",
    "numpy",
    "pyarrow",
    "duckdb",
    "dagster_duckdb",
    "dagster_duckdb_pandas",
)
# Modules that subclass a heavy library's class, so importing them must import it; nothing loaded at start-up
# imports them (the training asset does, inside its body). Each may bring only the libraries listed for it.
DEFINES_SUBCLASSES = {
    "mlops_assets.scones.features": {"sklearn", "scipy", "joblib", "numpy", "pandas", "pyarrow"},
    # The Delta I/O manager's type handler; build_tables imports it only when MLOPS_TABLE_FORMAT=delta.
    "resources.delta_io": {"deltalake", "pandas", "numpy", "pyarrow"},
}

PROBE = textwrap.dedent("""
    import importlib, json, pkgutil, sys

    PACKAGES, HEAVY, EXEMPT = {packages!r}, {heavy!r}, {exempt!r}
    first_importer = {{}}

    class RecordImporter:
        # Returns None (the regular finders do the import); only notes who asked for a heavy package first.
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in HEAVY and top not in first_importer:
                chain, frame = [], sys._getframe(1)
                while frame is not None:
                    module = frame.f_globals.get("__name__", "")
                    if module.partition(".")[0] in PACKAGES and frame.f_code.co_filename.endswith(".py"):
                        chain.append(f"{{module}}:{{frame.f_lineno}}")
                    frame = frame.f_back
                first_importer[top] = f"{{name}} imported by " + (" <- ".join(chain) or "a library")
            return None

    sys.meta_path.insert(0, RecordImporter())
    findings = []

    def check(step, allowed=()):
        for top in sorted(set(HEAVY) - set(allowed)):
            if top in sys.modules and top in first_importer:
                findings.append({{"step": step, "library": top, "chain": first_importer.pop(top)}})
        for top in allowed:  # accounted for by this step, not blamed on the next one
            first_importer.pop(top, None)

    import mlops_assets.definitions
    mlops_assets.definitions.defs()
    check("code location: import mlops_assets.definitions + defs()")
    import serving.app
    serving.app.create_app()
    check("serving: import serving.app + create_app()")
    modules = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        modules += [info.name for info in pkgutil.walk_packages(root.__path__, package + ".")]
    check("walking the packages")
    for name in sorted(set(modules) - set(EXEMPT)):
        importlib.import_module(name)
        check(f"import {{name}}")
    for name, allowed in EXEMPT.items():
        importlib.import_module(name)
        check(f"import {{name}} (may import {{', '.join(sorted(allowed))}})", allowed)
    print("PROBE_RESULT " + json.dumps({{"modules": len(modules), "findings": findings}}))
""")


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> dict:
    code = PROBE.format(packages=PACKAGES, heavy=HEAVY, exempt={k: sorted(v) for k, v in DEFINES_SUBCLASSES.items()})
    # The calling shell's platform variables stay out: all state goes to a temporary home, offline.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLOPS_", "MLFLOW_", "AWS_"))}
    env.update(standalone_environment(tmp_path_factory.mktemp("import-cost"), None))
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, f"the import probe failed:\n{result.stderr[-4000:]}"
    line = next(line for line in result.stdout.splitlines() if line.startswith("PROBE_RESULT "))
    return json.loads(line.removeprefix("PROBE_RESULT "))


def _report(findings: list[dict]) -> str:
    return "\n".join(f"- {f['step']}: {f['chain']}" for f in findings)


def test_loading_the_code_location_and_the_serving_app_imports_no_heavy_library(probe):
    loading = [f for f in probe["findings"] if f["step"].startswith(("code location", "serving"))]
    assert not loading, (
        f"heavy libraries imported while loading; import them inside the function that uses them:\n{_report(loading)}"
    )


def test_no_module_of_the_packages_imports_a_heavy_library(probe):
    assert probe["modules"] > 50  # the walk found the packages' modules, not an empty path
    assert not probe["findings"], (
        "heavy libraries imported at module import; import them inside the function "
        f"that uses them:\n{_report(probe['findings'])}"
    )
