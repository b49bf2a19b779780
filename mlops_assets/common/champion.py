"""The champion loader shared by asset code and the serving API (no Dagster definitions, no asset modules).

Whoever needs "the model that holds `champion` now" asks one `ChampionLoader`: it reads the alias, loads a
version once, and hands back the same object until the alias moves. The registry is passed per call, so one
loader can live for the whole process while runs and servers bring their own resource instance.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from resources.mlflow_registry import CHAMPION, model_uri

if TYPE_CHECKING:
    from resources.mlflow_registry import MlflowRegistry


@dataclass(frozen=True)
class Champion:
    model: Any
    version: Any  # the registry's ModelVersion: version, run_id, tags

    @property
    def number(self) -> str:
        return str(self.version.version)


class ChampionLoader:
    """The model version holding `alias` of `model_name`, loaded once per version and swapped whole.

    `load` turns a `models:/name/version` URI into a model (default: the registry's scikit-learn loader). A
    registry that cannot be read raises (see `MlflowRegistry.version_by_alias`); None means no version holds
    the alias.
    """

    def __init__(self, model_name: str, alias: str = CHAMPION, load: Callable[[str], Any] | None = None):
        self.model_name = model_name
        self.alias = alias
        self._load = load
        self._lock = threading.Lock()
        self._loaded: tuple[str, str, Champion] | None = None  # (tracking URI, version, champion)

    @property
    def current(self) -> Champion | None:
        """The last loaded champion, without asking the registry."""
        loaded = self._loaded
        return None if loaded is None else loaded[2]

    def get(self, registry: MlflowRegistry) -> Champion | None:
        """The version holding the alias now, loading it only if it differs from the one held."""
        version = registry.version_by_alias(self.model_name, self.alias)
        if version is None:
            return None
        key = (registry.tracking_uri, str(version.version))
        with self._lock:
            if self._loaded is None or self._loaded[:2] != key:
                uri = model_uri(self.model_name, version.version)
                model = self._load(uri) if self._load is not None else registry.load_sklearn(uri)
                # Only the current champion stays in memory.
                self._loaded = (*key, Champion(model, version))
            return self._loaded[2]
