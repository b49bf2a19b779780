"""What every router of the serving app shares: settings, stores, the registry and the poller."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi.templating import Jinja2Templates

from resources import build_object_store, build_registry
from resources.mlflow_registry import CHAMPION, MlflowRegistry
from resources.object_store import ObjectStore
from resources.settings import PlatformSettings
from serving.watchers import ChampionWatcher, Poller, SnapshotWatcher

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


@dataclass
class ServingContext:
    settings: PlatformSettings
    store: ObjectStore
    registry: MlflowRegistry
    poller: Poller
    templates: Jinja2Templates = field(default=TEMPLATES)
    # path -> handler(raw body) -> answer bytes or None; answered by `serving.hot_path.HotPaths` before routing
    hot_paths: dict = field(default_factory=dict)
    # callables(openapi document) adding paths that exist only at run time (one per deployment), see serving.app
    openapi_hooks: list = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: PlatformSettings, poll_seconds: float = 1.0) -> "ServingContext":
        return cls(settings, build_object_store(settings), build_registry(settings), Poller(poll_seconds))

    def watch_champion(self, model_name: str, alias: str = CHAMPION, loader=None) -> ChampionWatcher:
        return self.poller.add(ChampionWatcher(self.registry, model_name, alias, loader))

    def watch_snapshot(self, system: str, build) -> SnapshotWatcher:
        return self.poller.add(SnapshotWatcher(self.store, system, build))
