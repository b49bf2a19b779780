"""First materialization of every system, so that a new deployment's UI and API are not empty.

`python -m mlops_assets.bootstrap` (run by `python3 dev.py up`) calls each system's
`mlops_assets.<system>.bootstrap.bootstrap` (found by `mlops_assets.systems`, by their ORDER: Titanic first)
against the instance in DAGSTER_HOME; the runs appear in the UI like any other. A system that
was bootstrapped before is skipped (unless --force), and one that fails does not stop the others.

The console gets one line per system (materializing, done in N s, or failed with the reason); everything the
runs print, Dagster's event stream included, goes to `$MLOPS_HOME/logs/bootstrap-<system>.log`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import traceback
from pathlib import Path

import dagster as dg

from mlops_assets.systems import system_bootstraps
from resources.buckets import BucketUnavailable
from resources.settings import PlatformSettings


@contextlib.contextmanager
def output_to(path: Path):
    """Send this process's stdout and stderr to `path` for the block: the file descriptors (C libraries, logging
    handlers holding the original streams) and whatever sys.stdout/sys.stderr currently are."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        with open(path, "a", buffering=1) as text, contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def failure_reason(error: BaseException) -> str:
    """The innermost cause, on one line: what went wrong in the asset, not Dagster's wrapper around it."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {text[:200]}"


def shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="bootstrap systems that were bootstrapped before")
    parser.add_argument("--only", nargs="*", help="bootstrap only these systems")
    args = parser.parse_args(argv)
    settings = PlatformSettings.from_env()
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    console = os.fdopen(os.dup(1), "w", buffering=1)

    def say(line: str) -> None:
        console.write(f"[bootstrap] {line}\n")

    with output_to(logs / "bootstrap.log"):
        return bootstrap_all(args, settings, logs, say)


def bootstrap_all(args: argparse.Namespace, settings: PlatformSettings, logs: Path, say) -> int:
    from mlops_assets.definitions import defs

    try:
        definitions = defs()
    except BucketUnavailable as exc:
        say(str(exc))
        return 2
    markers = settings.home / "bootstrapped"
    markers.mkdir(parents=True, exist_ok=True)
    systems = system_bootstraps()
    unknown = sorted(set(args.only or []) - {name for name, _ in systems})
    if unknown:
        say(f"no system named {', '.join(unknown)} (systems: {', '.join(name for name, _ in systems)})")
        return 2
    failures = 0
    with dg.DagsterInstance.get() as instance:
        for name, bootstrap in systems:
            marker = Path(markers / name)
            if args.only and name not in args.only:
                continue
            if marker.exists() and not args.force:
                say(f"{name}: done before (use --force to redo)")
                continue
            started = time.monotonic()
            log = logs / f"bootstrap-{name}.log"
            say(f"{name}: materializing")
            with output_to(log):
                try:
                    bootstrap(definitions, instance)
                except Exception as error:
                    traceback.print_exc()
                    failure = error
                else:
                    failure = None
            if failure is not None:
                failures += 1
                say(
                    f"{name}: failed after {time.monotonic() - started:.0f} s: {failure_reason(failure)} "
                    f"(log: {shown(log)})"
                )
                continue
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
            say(f"{name}: done in {time.monotonic() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
