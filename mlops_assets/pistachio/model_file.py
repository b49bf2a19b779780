"""Reading a registered Pistachio model back: the skops file, loaded with the code's own trusted-type list.

MLflow's loader trusts whatever type list the model's MLmodel file declares (and refuses unless pickle
deserialization is globally allowed); here the allow-list lives in this code, so a tampered model is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_assets.pistachio.features import TRUSTED_MODEL_TYPES
from resources.mlflow_registry import MlflowRegistry
from resources.model_bucket import sha256_bytes

SKOPS_FILE = "model.skops"


class UntrustedModel(ValueError):
    """The model file contains types outside the allow-list."""


@dataclass(frozen=True)
class ModelFile:
    data: bytes

    @property
    def sha256(self) -> str:
        return sha256_bytes(self.data)

    def load(self):
        import skops.io

        untrusted = skops.io.get_untrusted_types(data=self.data)
        unexpected = sorted(set(untrusted) - set(TRUSTED_MODEL_TYPES))
        if unexpected:
            raise UntrustedModel(f"model file contains untrusted types: {', '.join(unexpected)}")
        return skops.io.loads(self.data, trusted=untrusted)


def fetch_model_file(registry: MlflowRegistry, model_uri: str) -> ModelFile:
    """The skops bytes of `model_uri` (e.g. models:/Pistachio_Classifier/3)."""
    mlflow = registry.activate()
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    path = local / SKOPS_FILE if local.is_dir() else local
    return ModelFile(path.read_bytes())


def load_pipeline(registry: MlflowRegistry, model_uri: str):
    return fetch_model_file(registry, model_uri).load()
