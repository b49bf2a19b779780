"""Mutation testing of the modules where a silent bug costs most, one module at a time with its fast tests only.

    .venv/bin/python scripts/mutation.py                 # every module below
    .venv/bin/python scripts/mutation.py queue snapshots # some of them

For each module, mutmut (configured in pyproject.toml's [tool.mutmut]) runs in a scratch copy of the repository
with `only_mutate` set to that module and the test selection set to its tests, so the worktree is never touched
and each module's figure depends only on its own tests. Prints the kill rate per module: killed mutants (a test
failed, or the tests hung past mutmut's timeout) over all mutants, survivors and untested ones included.
CPU heavy (minutes per module); not part of CI.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.90


@dataclass(frozen=True)
class Module:
    path: str
    tests: tuple[str, ...]
    mutants: str = ""  # a mutmut name pattern narrowing the module to the part under test (default: all of it)

    @property
    def dotted(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")


MODULES = {
    "promotion": Module("mlops_assets/common/promotion.py", ("tests/common/test_promotion.py",)),
    "queue": Module("serving/deploy_queue.py", ("tests/deploy/test_deploy_queue.py",
                                                 "tests/serving/test_deploy_queue_claims.py")),
    "snapshots": Module("resources/snapshots.py", ("tests/resources/test_snapshots.py",)),
    "scones_workflow": Module("mlops_assets/scones/workflow.py", ("tests/scones/test_workflow.py",
                                                                 "tests/scones/test_default_threshold.py")),
    # The form's words -> training codes and the champion's answer table; the routes need a live champion.
    "titanic_domain": Module("serving/titanic.py", ("tests/titanic/test_domain_table.py",),
                             "serving.titanic.xǁ*"),
    "model_file": Module("mlops_assets/pistachio/model_file.py", ("tests/pistachio/test_model_file.py",)),
}


def mutmut_section(module: Module) -> str:
    quoted = lambda items: "[" + ", ".join(f'"{item}"' for item in items) + "]"
    return (f"[tool.mutmut]\nsource_paths = {quoted(['mlops_assets', 'resources', 'serving'])}\n"
            f"only_mutate = {quoted([module.path])}\n"
            f"pytest_add_cli_args_test_selection = {quoted(module.tests)}\n"
            f"also_copy = {quoted(['dagster.yaml', 'workspace.yaml'])}\n")


def scratch_copy(target: Path, module: Module) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    pyproject = (target / "pyproject.toml").read_text()
    pyproject = re.sub(r"\[tool\.mutmut\]\n(?:(?!\[).*\n?)*", "", pyproject)
    (target / "pyproject.toml").write_text(pyproject.rstrip() + "\n\n" + mutmut_section(module))


def run_module(name: str, module: Module, keep: bool) -> Counter:
    scratch = Path(tempfile.mkdtemp(prefix=f"mutation-{name}-"))
    try:
        scratch_copy(scratch, module)
        pattern = module.mutants or f"{module.dotted}.*"
        run = subprocess.run([sys.executable, "-m", "mutmut", "run", pattern], cwd=scratch,
                             capture_output=True, text=True)
        results = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=scratch,
                                 capture_output=True, text=True)
        statuses = Counter()
        survivors = []
        prefix = pattern.rstrip("*")
        for line in results.stdout.splitlines():
            mutant, _, status = line.strip().rpartition(": ")
            if mutant.startswith(prefix):
                statuses[status] += 1
                if status not in ("killed", "timeout"):
                    survivors.append(f"{mutant}: {status}")
        if not statuses:
            print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{name}: mutmut produced no results")
        for survivor in survivors:
            print(f"  {survivor}")
        return statuses
    finally:
        if keep:
            print(f"  scratch copy kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", choices=[[], *MODULES], default=[], metavar="MODULE",
                        help=f"some of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy (mutmut show NAME there)")
    args = parser.parse_args()
    chosen = args.modules or list(MODULES)
    rows = []
    for name in chosen:
        started = time.monotonic()
        print(f"{name}: {MODULES[name].path} with {', '.join(MODULES[name].tests)}", flush=True)
        statuses = run_module(name, MODULES[name], args.keep)
        total = sum(statuses.values())
        killed = statuses["killed"] + statuses["timeout"]
        rows.append((name, killed, total, dict(statuses), time.monotonic() - started))
        print(f"{name}: {killed}/{total} killed ({killed / total:.0%}) {dict(statuses)} "
              f"in {time.monotonic() - started:.0f} s", flush=True)
    print("\nmodule            killed  total  rate")
    for name, killed, total, _, _ in rows:
        mark = "" if killed / total >= GOAL else f"  below the {GOAL:.0%} goal"
        print(f"{name:<17} {killed:>6} {total:>6}  {killed / total:>4.0%}{mark}")
    return 0 if all(killed / total >= GOAL for _, killed, total, _, _ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
