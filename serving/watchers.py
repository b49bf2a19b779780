"""Background watchers that swap in newly promoted models and newly published snapshots without a restart.

A single poller thread checks every watcher every `poll_seconds`. Loading happens off the request path and the
swap is one attribute assignment, so a request sees either the old state or the new one, never a mix, and never
waits for a load.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops_assets.common.champion import ChampionLoader
from resources.mlflow_registry import CHAMPION, MlflowRegistry
from resources.object_store import ObjectStore
from resources.snapshots import current_snapshot
from serving.lineage import Lineage

log = logging.getLogger("serving.watchers")


@dataclass(frozen=True)
class LoadedModel:
    model: Any
    lineage: Lineage


class ChampionWatcher:
    """Holds the model version that currently has `alias` in the registry."""

    def __init__(
        self,
        registry: MlflowRegistry,
        model_name: str,
        alias: str = CHAMPION,
        loader: Callable[[str], Any] | None = None,
    ):
        self.registry = registry
        self.model_name = model_name
        self.alias = alias
        self._champions = ChampionLoader(model_name, alias, loader)
        self.current: LoadedModel | None = None

    def refresh(self) -> bool:
        champion = self._champions.get(self.registry)
        if champion is None:
            return False
        if self.current is not None and self.current.lineage.model_version == champion.number:
            return False
        version = champion.version
        self.current = LoadedModel(
            champion.model, Lineage.from_model_version(version, self.alias, self._run_url(version))
        )
        log.info("serving %s v%s (%s)", self.model_name, version.version, self.alias)
        return True

    def _run_url(self, version) -> str | None:
        # Looked up once per promoted version (the URL needs the run's experiment), never per request; a run
        # that cannot be read (deleted) costs the link, not the model.
        try:
            return self.registry.run_url(version.run_id) if version.run_id else None
        except Exception:
            log.warning("no MLflow run %s for %s v%s", version.run_id, self.model_name, version.version)
            return None


class SnapshotWatcher:
    """Holds the in-memory state built from a system's current serving snapshot."""

    def __init__(self, store: ObjectStore, system: str, build: Callable[[ObjectStore, dict], Any]):
        self.store = store
        self.system = system
        self._build = build
        self.snapshot_id: str | None = None
        self.current: Any = None

    def refresh(self) -> bool:
        pointer = current_snapshot(self.store, self.system)
        if pointer is None or pointer["snapshot_id"] == self.snapshot_id:
            return False
        state = self._build(self.store, pointer)
        self.current, self.snapshot_id = state, pointer["snapshot_id"]
        log.info("serving %s snapshot %s", self.system, self.snapshot_id)
        return True


class Poller:
    def __init__(self, poll_seconds: float):
        self.poll_seconds = poll_seconds
        self.watchers: list[Any] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, watcher):
        self.watchers.append(watcher)
        return watcher

    def refresh_all(self) -> bool:
        changed = False
        for watcher in self.watchers:
            try:
                changed = watcher.refresh() or changed
            except Exception:  # a broken publication must not kill the poller: keep serving the last good one
                log.exception("refresh of %r failed; keeping the current state", watcher)
        if changed:
            # The serving process holds ~500k long-lived objects (MLflow, SQLAlchemy, pandas, the models): a full
            # collection walks them all, ~0.4 s with the GIL held, a pause every request in flight would wait out.
            # Frozen objects are skipped by the collector; reference counting still frees a replaced model.
            gc.freeze()
        return changed

    def start(self) -> None:
        # The first load happens in the thread too: the server answers (503 for a model not loaded yet)
        # instead of hanging its start-up on a slow registry or object store.
        self._thread = threading.Thread(target=self._run, name="serving-poller", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.refresh_all()
        while not self._stop.wait(self.poll_seconds):
            self.refresh_all()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        gc.unfreeze()  # the exit's final collection then sees everything (native extensions check for leaks)
