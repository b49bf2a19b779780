"""What every router of the serving app shares: settings, stores, the registry and the poller."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi.templating import Jinja2Templates

from resources import build_object_store, build_registry
from resources.mlflow_registry import CHAMPION, MlflowRegistry
from resources.object_store import ObjectStore
from resources.settings import PlatformSettings
from serving.inference_log import InferenceLog
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
    # every answer is recorded here (serving.inference_log); started and flushed by the app's lifespan
    inference_log: InferenceLog | None = None

    @classmethod
    def from_settings(cls, settings: PlatformSettings, poll_seconds: float = 1.0) -> ServingContext:
        store = build_object_store(settings)
        return cls(
            settings, store, build_registry(settings), Poller(poll_seconds), inference_log=InferenceLog.from_env(store)
        )

    def watch_champion(self, model_name: str, alias: str = CHAMPION, loader=None) -> ChampionWatcher:
        return self.poller.add(ChampionWatcher(self.registry, model_name, alias, loader))

    def watch_snapshot(self, system: str, build) -> SnapshotWatcher:
        return self.poller.add(SnapshotWatcher(self.store, system, build))
