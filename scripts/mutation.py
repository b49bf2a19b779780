"""Mutation testing of the modules where a silent bug costs most, one module at a time with its fast tests only.

    .venv/bin/python scripts/mutation.py                 # every module below
    .venv/bin/python scripts/mutation.py queue snapshots # some of them
    .venv/bin/python scripts/mutation.py promotion --show-survivors --max-children 1

For each module, mutmut (configured in pyproject.toml's [tool.mutmut]) runs in a scratch copy of the repository
with `only_mutate` set to that module and the test selection set to its tests, so the worktree is never touched
and each module's figure depends only on its own tests. Prints a table per module: killed mutants (a test failed,
the tests hung past mutmut's timeout, or their run died of a signal the mutant sent), survivors (untested ones
included), mutants excluded as equivalent (EQUIVALENT below: no observable behaviour changes, each with its reason)
and the kill rate, killed over all mutants but the equivalent ones. CPU heavy (minutes per module); not part of CI.
"""

from __future__ import annotations

import argparse
import json
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
    # The rule and its records; the gate with the registry down or the champion unscorable; the run's candidate.
    "promotion": Module(
        "mlops_assets/common/promotion.py", ("tests/common/test_promotion.py", "tests/common/test_gate.py")
    ),
    "queue": Module(
        "serving/deploy_queue.py",
        (
            "tests/deploy/test_deploy_queue.py",
            "tests/deploy/test_deploy_queue_worker.py",
            "tests/serving/test_deploy_queue_claims.py",
        ),
    ),
    "snapshots": Module("resources/snapshots.py", ("tests/resources/test_snapshots.py",)),
    "scones_workflow": Module(
        "mlops_assets/scones/workflow.py", ("tests/scones/test_workflow.py", "tests/scones/test_default_threshold.py")
    ),
    # The form's words -> training codes and the champion's answer table; the routes need a live champion.
    "titanic_domain": Module("serving/titanic.py", ("tests/titanic/test_domain_table.py",), "serving.titanic.xǁ*"),
    "model_file": Module("mlops_assets/pistachio/model_file.py", ("tests/pistachio/test_model_file.py",)),
}


# Mutants that change no behaviour anyone can observe, so no honest test can kill them: module -> {(function,
# original line, mutated line): reason}. Matched on the mutated line, so a code change that moves them is noticed
# (they show up as survivors again). Keep this small: dead code is deleted rather than listed here.
GRID_LINE = "range(len(FARE_BANDS))], names=FEATURES).to_frame(index=False)"
EQUIVALENT: dict[str, dict[tuple[str, str, str], str]] = {
    "titanic_domain": {
        (
            "DomainTableǁ__init__",
            GRID_LINE,
            GRID_LINE.replace("False", "None"),
        ): "the grid's index is never read: its columns are taken by name and the model ignores the index",
        (
            "DomainTableǁ__init__",
            GRID_LINE,
            GRID_LINE.replace("False", "True"),
        ): "the grid's index is never read: its columns are taken by name and the model ignores the index",
        (
            "DomainTableǁ__init__",
            "for i, (row, label) in enumerate(zip(grid[FEATURES].itertuples(index=False), predicted))",
            "for i, (row, label) in enumerate(zip(grid[FEATURES].itertuples(index=None), predicted))",
        ): "pandas reads index=None as false, the same as index=False",
    },
    "scones_workflow": {
        (
            "ThresholdConfidenceNotMetǁ__init__",
            'best = max(event["inferences"]) if event.get("inferences") else float("nan")',
            'best = max(event["inferences"]) if event.get("inferences") else float("NAN")',
        ): "float() reads 'nan' in any letter case",
        (
            "serialize",
            '"image_data": base64.b64encode(image_bytes).decode("ascii"),',
            '"image_data": base64.b64encode(image_bytes).decode("ASCII"),',
        ): "codec names ignore letter case",
    },
    "promotion": {
        (
            "candidate_of_run",
            "records = context.instance.fetch_materializations(asset_key, limit=1).records",
            "records = context.instance.fetch_materializations(asset_key, limit=2).records",
        ): "only records[0], the newest, is read: fetching one more older record changes nothing",
        (
            "decide_promotion",
            "champion = registry.version_by_alias(model_name, CHAMPION)",
            "champion = registry.version_by_alias(model_name, )",
        ): "version_by_alias's alias defaults to CHAMPION",
        (
            "promotion_gate",
            "severity=dg.AssetCheckSeverity.ERROR,",
            "",
        ): "an AssetCheckResult's severity defaults to ERROR",
    },
    "queue": {
        (
            "DeployQueueǁ_connect",
            "conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)",
            "conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, )",
        ): "each thread uses only the connection it opened (threading.local), so the same-thread check never fires",
        (
            "DeployQueueǁ_connect",
            "conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)",
            "conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=True)",
        ): "each thread uses only the connection it opened (threading.local), so the same-thread check never fires",
        (
            "_worker_is_dead",
            'pid = rest.partition(":")[0]',
            'pid = rest.rpartition(":")[0]',
        ): "a worker id is host:pid:suffix with no ':' in the suffix, so both take the pid",
        (
            "new_worker_id",
            'return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"',
            'return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:9]}"',
        ): "the random suffix only tells a process's workers apart; one more hex digit does that too",
        (
            "QueueWorkerǁstop",
            "self._thread.join(timeout=10)",
            "self._thread.join(timeout=None)",
        ): "the bound only matters for a model stuck over 10 s inside predict; no fast test can wait that out",
        (
            "QueueWorkerǁstop",
            "self._thread.join(timeout=10)",
            "self._thread.join(timeout=11)",
        ): "the bound only matters for a model stuck over 10 s inside predict; no fast test can wait that out",
        (
            "QueueWorkerǁwait_finished",
            "if row is None or row.status != PENDING or remaining <= 0:",
            "if row is None or row.status != PENDING or remaining < 0:",
        ): "at exactly 0 s left the mutant waits 0 s and re-reads once more, then returns the same row",
        ("QueueWorkerǁ_run", "busy = False", "busy = None"): "None is false like False",
        (
            "QueueWorkerǁprocess_one",
            "model_record = None",
            'model_record = ""',
        ): "the queue stores a model record only when it is truthy: an empty one is NULL like None",
    },
}


def sql_case_only(original: str, mutated: str) -> bool:
    """A mutant that only changes the letter case of SQL keywords, names or pragma values (SQLite ignores it);
    a quoted literal such as 'PENDING' must be unchanged, since SQLite compares those exactly."""
    literals = re.compile(r"'[^']*'")
    return (
        original != mutated
        and original.lower() == mutated.lower()
        and literals.findall(original) == literals.findall(mutated)
        and re.search(r"\b(SELECT|UPDATE|INSERT|WHERE|PRAGMA|AND|SET)\b", original, re.IGNORECASE) is not None
    )


# Classes of equivalent mutants, per module: (reason, test on the original and mutated line).
EQUIVALENT_RULES = {
    "queue": [("SQLite ignores the case of keywords, names and pragma values", sql_case_only)],
}


def mutmut_section(module: Module) -> str:
    quoted = lambda items: "[" + ", ".join(f'"{item}"' for item in items) + "]"
    return (
        f"[tool.mutmut]\nsource_paths = {quoted(['mlops_assets', 'resources', 'serving'])}\n"
        f"only_mutate = {quoted([module.path])}\n"
        f"pytest_add_cli_args_test_selection = {quoted(module.tests)}\n"
        # No .pytest_cache writes from each mutant's run (mutmut already stops at the first failure, -x).
        f"pytest_add_cli_args = {quoted(['-p', 'no:cacheprovider'])}\n"
        f"also_copy = {quoted(['dagster.yaml', 'workspace.yaml'])}\n"
    )


def scratch_copy(target: Path, module: Module | None, under: str = ".") -> None:
    """The repository's files (or those `under` a folder) into `target`, with mutmut set up for `module`."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", under],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    if module is None:
        return
    pyproject = (target / "pyproject.toml").read_text()
    pyproject = re.sub(r"\[tool\.mutmut\]\n(?:(?!\[).*\n?)*", "", pyproject)
    (target / "pyproject.toml").write_text(pyproject.rstrip() + "\n\n" + mutmut_section(module))


@dataclass
class Row:
    name: str
    statuses: Counter
    equivalent: int

    @property
    def killed(self) -> int:
        return sum(self.statuses[status] for status in KILLED)

    @property
    def unchecked(self) -> int:  # only in a run stopped before its end (see --scratch)
        return self.statuses["not checked"]

    @property
    def counted(self) -> int:
        return sum(self.statuses.values()) - self.equivalent - self.unchecked

    @property
    def survived(self) -> int:
        return self.counted - self.killed

    @property
    def rate(self) -> float:
        return self.killed / self.counted if self.counted else 1.0

    @property
    def goal_met(self) -> bool:
        return self.rate >= GOAL and not self.unchecked


# A mutant is killed when a test failed, its tests hung past mutmut's timeout, or its test run died of a signal
# the mutant sent (mutmut calls that "suspicious"; e.g. a worker-liveness probe made to signal the test process
# itself): in each case the tests did not pass.
KILLED = ("killed", "timeout", "signalled")

# Run inside the scratch copy: every mutant's status, and the diff of each one that was not killed (one process
# for all of them; `mutmut show` per mutant costs seconds each).
RESULTS = f"""
import json
KILLED = {KILLED!r}
from mutmut.__main__ import SourceFileMutationData, get_diff_for_mutant, status_by_exit_code, walk_mutatable_files
rows = []
for path in walk_mutatable_files():
    data = SourceFileMutationData(path=path)
    data.load()
    for name, exit_code in data.exit_code_by_key.items():
        status = status_by_exit_code[exit_code]
        if status == "suspicious" and isinstance(exit_code, int) and exit_code < 0:
            status = "signalled"
        rows.append((name, status, "" if status in KILLED else get_diff_for_mutant(name, path=data.path)))
print(json.dumps(rows))
"""


def changed_lines(diff: str) -> tuple[str, str]:
    """The original and the mutated line of a one-line mutant, as `mutmut show` prints them."""
    removed = [line[1:].strip() for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return " ".join(removed), " ".join(added)


def equivalent_reason(name: str, mutant: str, diff: str) -> str | None:
    original, mutated = changed_lines(diff)
    for (function, before, after), reason in EQUIVALENT.get(name, {}).items():
        named = f"x_{function}__mutmut_" in mutant or f"xǁ{function}__mutmut_" in mutant
        if named and original == before and mutated == after:
            return reason
    for reason, applies in EQUIVALENT_RULES.get(name, []):
        if applies(original, mutated):
            return reason
    return None


def results(scratch: Path) -> list[tuple[str, str, str]]:
    """(mutant, status, diff) of every mutant mutmut generated in the scratch copy so far."""
    done = subprocess.run([sys.executable, "-c", RESULTS], cwd=scratch, capture_output=True, text=True)
    return json.loads(done.stdout or "[]")


def to_run(scratch: Path, module: Module, pattern: str, resume: bool, retest: bool = False) -> list[str]:
    """The mutant names to give `mutmut run`. mutmut re-runs every mutant it is given by name or pattern, and goes
    on with only the unchecked ones when given none: so none when the whole module is mutated (only_mutate already
    limits it to the module), and on resuming a narrowed module, its unchecked mutants by name."""
    if retest:  # after tests were added: the mutants not killed so far, again, and those not checked yet
        prefix = pattern.rstrip("*")
        return [m for m, status, _ in results(scratch) if status not in KILLED and m.startswith(prefix)]
    if not module.mutants:
        return []
    if resume:
        unchecked = [
            m for m, status, _ in results(scratch) if status == "not checked" and m.startswith(pattern.rstrip("*"))
        ]
        if unchecked:
            return unchecked
    return [pattern]


def run_module(name: str, module: Module, args: argparse.Namespace) -> Row:
    scratch = Path(args.scratch) if args.scratch else Path(tempfile.mkdtemp(prefix=f"mutation-{name}-"))
    keep = args.keep or bool(args.scratch)
    try:
        if not args.scratch:
            scratch_copy(scratch, module)
        pattern = module.mutants or f"{module.dotted}.*"
        run = None
        if args.retest and not args.no_run:
            scratch_copy(scratch, None, "tests")
            # mutmut traces only tests with new names: which functions a changed test calls must be traced again.
            (scratch / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        names = [] if args.no_run else to_run(scratch, module, pattern, bool(args.scratch), args.retest)
        if not args.no_run and (names or not args.retest):  # a retest with no mutant left to check runs nothing
            run = subprocess.run(
                [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children), *names],
                cwd=scratch,
                capture_output=True,
                text=True,
            )
        statuses = Counter()
        equivalent = 0
        prefix = pattern.rstrip("*")
        for mutant, status, diff in results(scratch):
            if not mutant.startswith(prefix):
                continue
            statuses[status] += 1
            if status in (*KILLED, "not checked"):
                continue
            reason = equivalent_reason(name, mutant, diff)
            if reason is not None:
                equivalent += 1
                print(f"  {mutant}: {status}, equivalent: {reason}")
            else:
                print(f"  {mutant}: {status}")
                if args.show_survivors:
                    print(
                        "    "
                        + "\n    ".join(
                            line
                            for line in diff.strip().splitlines()
                            if line[:1] in "+-" and line[:3] not in ("+++", "---")
                        )
                    )
        if not statuses:
            if run is not None:
                print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{name}: mutmut produced no results")
        return Row(name, statuses, equivalent)
    finally:
        if keep:
            print(f"  scratch copy kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def table(rows: list[Row]) -> str:
    """The figure for README's test section, as a Markdown table."""
    lines = [
        "| module | mutants | killed | survived | equivalent | kill rate | goal met |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        met = "yes" if row.goal_met else "no"
        if row.unchecked:
            met = f"not known: {row.unchecked} mutants not checked (stopped run)"
        lines.append(
            f"| {row.name} | {sum(row.statuses.values())} | {row.killed} | {row.survived} | "
            f"{row.equivalent} | {row.rate:.0%} | {met} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "modules",
        nargs="*",
        choices=[[], *MODULES],
        default=[],
        metavar="MODULE",
        help=f"some of {', '.join(MODULES)} (default: all)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy (mutmut show NAME there)")
    parser.add_argument("--show-survivors", action="store_true", help="print the diff of every surviving mutant")
    parser.add_argument(
        "--max-children", type=int, default=1, help="mutmut's parallel test runs (default 1: the machine is shared)"
    )
    parser.add_argument(
        "--scratch",
        metavar="DIR",
        help="one module: go on in the scratch copy a --keep run left (mutmut resumes there)",
    )
    parser.add_argument(
        "--retest",
        action="store_true",
        help="with --scratch: copy the tests in again and check the mutants not killed so far once more (killed "
        "ones stay killed: use it only after tests were added or made stricter, never weakened)",
    )
    parser.add_argument("--no-run", action="store_true", help="with --scratch: only tabulate its results so far")
    args = parser.parse_args()
    if args.retest and not args.scratch:
        parser.error("--retest takes --scratch")
    if args.scratch and len(args.modules) != 1:
        parser.error("--scratch takes exactly one module")
    chosen = args.modules or list(MODULES)
    rows = []
    for name in chosen:
        started = time.monotonic()
        print(f"{name}: {MODULES[name].path} with {', '.join(MODULES[name].tests)}", flush=True)
        row = run_module(name, MODULES[name], args)
        rows.append(row)
        print(
            f"{name}: {row.killed}/{row.counted} killed ({row.rate:.0%}), {row.equivalent} equivalent, "
            f"{dict(row.statuses)} in {time.monotonic() - started:.0f} s",
            flush=True,
        )
    print()
    print(table(rows))
    return 0 if all(row.goal_met for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
