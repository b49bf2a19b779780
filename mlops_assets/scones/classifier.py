"""The classifier the image workflow calls: the serving API's endpoint when one is configured, else in-process.

The original's classify Lambda called a long-lived SageMaker endpoint. `dev.py up` runs the platform's serving
API, whose champion watcher keeps the current champion loaded, so a run worker that posts its images there
never imports MLflow, scikit-learn or skops: loading those is most of what a one-image run costs. Without an
endpoint (tests in-process, a bootstrap without servers) the run loads the champion itself, once per version.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from mlops_assets.common.champion import ChampionLoader
from mlops_assets.scones.constants import MODEL_NAME
from mlops_assets.scones.imaging import ImageRejected
from mlops_assets.scones.workflow import classify

if TYPE_CHECKING:
    from resources.mlflow_registry import MlflowRegistry

CLASSIFY_ROUTE = "/scones/classify"
# What the route answers for bytes that are not an acceptable image (imaging.ImageRejected's statuses). Any other
# answer (a 404 from a wrong URL, a 503 without a champion, a 5xx) says nothing about the image: fall back.
IMAGE_REFUSED = {413, 415, 422}
IN_PROCESS = "this run"

# The champion model, loaded once per version and process: a run must not pay seconds of loading per image.
CHAMPIONS = ChampionLoader(MODEL_NAME)


class NoChampion(RuntimeError):
    """No version of the model holds the champion alias."""


class InvalidImage(ValueError):
    """The image is not one the model can classify; `model_version` is the version that refused it, if known."""

    def __init__(self, reason: str, model_version: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.model_version = model_version


class EndpointUnavailable(RuntimeError):
    """The endpoint could not answer for the model (unreachable, timed out, 5xx, no champion loaded)."""


@dataclass(frozen=True)
class Answer:
    inferences: list[float]  # [p_bicycle, p_motorcycle]
    model_version: str
    answered_by: str  # the endpoint's URL, or "this run" for the champion loaded in-process


class SconesClassifier(dg.ConfigurableResource):
    """`[p_bicycle, p_motorcycle]` and the champion version that answered, for one image at a time."""

    endpoint_url: str | None = Field(
        default=None,
        description="Base URL of the serving API (POST "
        f"{CLASSIFY_ROUTE}); none: the champion is loaded in this process",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, description="Per request, before falling back")

    def session(self, registry: MlflowRegistry, log: Callable[[str], None]) -> ClassifierSession:
        return ClassifierSession(self, registry, log)


class ClassifierSession:
    """One batch's classifications. The endpoint is asked until it fails to answer once; from then on the batch
    is classified in-process, so an API that is down or has no champion loaded loses no image."""

    def __init__(self, config: SconesClassifier, registry: MlflowRegistry, log: Callable[[str], None]):
        self._url = config.endpoint_url.rstrip("/") + CLASSIFY_ROUTE if config.endpoint_url else None
        self._timeout = config.timeout_seconds
        self._registry = registry
        self._log = log
        self._http = None
        self._champion = None  # asked of the registry once per batch, like the endpoint's watcher does

    def __enter__(self) -> ClassifierSession:
        return self

    def __exit__(self, *exc) -> None:
        if self._http is not None:
            self._http.close()

    def classify(self, event: dict) -> Answer:
        """Raises InvalidImage for an image that is not one, NoChampion when no champion exists anywhere."""
        if self._url is not None:
            try:
                return self._post(event)
            except EndpointUnavailable as exc:
                self._log(
                    f"the classify endpoint {self._url} did not answer ({exc}); this batch is classified "
                    "with the champion loaded in this run"
                )
                self._url = None
        champion = self._champion = self._champion or CHAMPIONS.get(self._registry)
        if champion is None:
            raise NoChampion(f"no 'champion' version of {MODEL_NAME}: materialize scones/image_classifier first")
        try:
            return Answer(classify(event, champion.model)["inferences"], champion.number, IN_PROCESS)
        except ImageRejected as exc:
            raise InvalidImage(exc.reason, champion.number) from None

    def _post(self, event: dict) -> Answer:
        import requests  # only the endpoint path needs an HTTP client

        if self._http is None:
            self._http = requests.Session()  # one connection for the batch
        name = event["s3_key"].rsplit("/", 1)[-1]
        try:
            response = self._http.post(
                self._url, timeout=self._timeout, files={"file": (name, base64.b64decode(event["image_data"]))}
            )
        except requests.RequestException as exc:
            raise EndpointUnavailable(f"{type(exc).__name__}: {exc}") from None
        if response.status_code in IMAGE_REFUSED:
            raise InvalidImage(problem(response))
        if response.status_code != 200:
            raise EndpointUnavailable(f"HTTP {response.status_code}: {response.text[:200]}")
        body = response.json()
        return Answer([float(p) for p in body["inferences"]], str(body["lineage"]["model_version"]), self._url)


def problem(response) -> str:
    """The reason a 4xx names (FastAPI's `detail`, a string or a list of {loc, msg}), else the raw body."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(detail, list):
        return "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)
    return str(detail)
