"""First materialization of every system, so that a new deployment's UI and API are not empty.

`python -m mlops_assets.bootstrap` (run by `python3 dev.py up`) calls each `sensors.<system>.bootstrap`,
Titanic first, against the instance in DAGSTER_HOME; the runs appear in the UI like any other. A system that
was bootstrapped before is skipped (unless --force), and one that fails does not stop the others.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

import dagster as dg

import sensors
from resources.buckets import BucketUnavailable
from resources.settings import PlatformSettings

FIRST = ["titanic"]


def system_bootstraps() -> list[tuple[str, object]]:
    names = [m.name for m in pkgutil.iter_modules(sensors.__path__)]
    ordered = [n for n in FIRST if n in names] + sorted(n for n in names if n not in FIRST)
    found = []
    for name in ordered:
        module = importlib.import_module(f"sensors.{name}")
        if callable(getattr(module, "bootstrap", None)):
            found.append((name, module.bootstrap))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="bootstrap systems that were bootstrapped before")
    parser.add_argument("--only", nargs="*", help="bootstrap only these systems")
    args = parser.parse_args(argv)

    from mlops_assets.definitions import defs

    try:
        definitions = defs()
    except BucketUnavailable as exc:
        print(f"[bootstrap] {exc}", flush=True)
        return 2
    markers = PlatformSettings.from_env().home / "bootstrapped"
    markers.mkdir(parents=True, exist_ok=True)
    failures = 0
    with dg.DagsterInstance.get() as instance:
        for name, bootstrap in system_bootstraps():
            marker = Path(markers / name)
            if args.only and name not in args.only:
                continue
            if marker.exists() and not args.force:
                print(f"[bootstrap] {name}: done before (use --force to redo)", flush=True)
                continue
            started = time.monotonic()
            print(f"[bootstrap] {name}: materializing", flush=True)
            try:
                bootstrap(definitions, instance)
            except Exception:
                failures += 1
                traceback.print_exc()
                print(f"[bootstrap] {name}: FAILED after {time.monotonic() - started:.0f} s", flush=True)
                continue
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
            print(f"[bootstrap] {name}: materialized in {time.monotonic() - started:.0f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
