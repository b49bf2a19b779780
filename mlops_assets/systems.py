"""The platform's systems, found by one convention (docs/architecture.md) instead of lists kept by hand.

A system is a sub-package `mlops_assets/<name>/` that has a `definitions.py`. By the same name it may bring:

- `mlops_assets/<name>/constants.py`, its contract: Dagster-free names (SYSTEM, model and object names) that its
  assets and its router both import;
- `mlops_assets/<name>/definitions.py`, `defs`: its assets, checks, jobs, schedules and sensors; optionally
  `RETRAIN`, the monitoring checks whose failure requests which training job (the platform's `sensors/` package
  builds that sensor, and each system's automation-condition sensor);
- `mlops_assets/<name>/bootstrap.py`, `bootstrap(defs, instance)`: its first materialization (`dev.py up`), with
  an optional `ORDER` (lower runs first);
- `serving/<name>.py`, its router: `build_router(ctx)`, `TITLE` and `HOME` (its landing page).

The code location, the platform's sensors, the serving app and the bootstrap all ask this module, so a new system
is new files only.
Dagster-free and cheap: serving calls it at start-up and must not import the asset modules.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path
from types import ModuleType

PACKAGE = "mlops_assets"
ROOT = Path(__file__).parent


def system_names() -> list[str]:
    """Every system package's name, sorted: the packages of mlops_assets that hold a definitions module."""
    names = []
    for info in pkgutil.iter_modules([str(ROOT)]):
        if info.ispkg and any(m.name == "definitions" for m in pkgutil.iter_modules([str(ROOT / info.name)])):
            names.append(info.name)
    return sorted(names)


def optional_module(name: str) -> ModuleType | None:
    """The module `name`, or None when there is no such module (an error raised inside it propagates)."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:  # a parent package is missing
        return None
    return None if spec is None else importlib.import_module(name)


def system_definitions() -> list:
    """Each system's `defs` (a dg.Definitions), in system_names() order."""
    return [importlib.import_module(f"{PACKAGE}.{name}.definitions").defs for name in system_names()]


def system_routers() -> list[ModuleType]:
    """Each system's router module (`serving/<name>.py`), for the systems that serve something."""
    modules = (optional_module(f"serving.{name}") for name in system_names())
    return [module for module in modules if module is not None and hasattr(module, "build_router")]


DEFAULT_BOOTSTRAP_ORDER = 100


def system_bootstraps() -> list[tuple[str, object]]:
    """(name, bootstrap function) of each system that has one, by its module's ORDER, then by name."""
    found = []
    for name in system_names():
        module = optional_module(f"{PACKAGE}.{name}.bootstrap")
        if module is not None and callable(getattr(module, "bootstrap", None)):
            found.append((getattr(module, "ORDER", DEFAULT_BOOTSTRAP_ORDER), name, module.bootstrap))
    return [(name, function) for _, name, function in sorted(found, key=lambda item: item[:2])]
