"""The overview page at `/`: per system its champion, its monitoring figures and charts, failed checks, links.

Read cheaply on every request: the MLflow registry (one alias lookup per system with a model) and the small
summary JSON documents the monitoring assets write to the object store (`monitoring/<system>/<asset>.json`).
Nothing materialized yet is a normal state: every part says what is missing instead of failing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from mlops_assets.common.log_format import summary_key, summary_prefix
from resources.mlflow_registry import CHAMPION
from resources.object_store import ObjectNotFound
from serving.context import ServingContext

# The registered model each system serves, and the version tags that hold its key metric (first found wins).
CHAMPIONS = {
    "titanic": ("titanic_modal", ("accuracy", "promotion.candidate_accuracy")),
    "scones": ("scones_classifier", ("accuracy", "promotion.candidate_accuracy")),
    "pistachio": ("Pistachio_Classifier", ("auc", "Validation AUC", "promotion.candidate_auc")),
}


def age(when: datetime, now: datetime | None = None) -> str:
    seconds = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


@dataclass
class Champion:
    version: str
    trained_at: datetime
    metric: str | None
    value: str | None
    run_url: str | None
    version_url: str


@dataclass
class SystemView:
    name: str
    title: str
    home: str
    champion: Champion | None = None
    champion_note: str = ""
    summaries: list[dict] = field(default_factory=list)
    last_materialized: datetime | None = None

    @property
    def failures(self) -> list[dict]:
        return [
            {"asset": summary["asset"], **check}
            for summary in self.summaries
            for check in summary.get("checks", [])
            if not check.get("passed", True)
        ]


def champion_of(ctx: ServingContext, system: str) -> tuple[Champion | None, str]:
    if system not in CHAMPIONS:
        return None, "no registered model: answers come from snapshots or per-deployment model files"
    model_name, metric_tags = CHAMPIONS[system]
    version = ctx.registry.version_by_alias(model_name, CHAMPION)
    if version is None:
        return None, f"no {CHAMPION} of {model_name} yet"
    tags = dict(version.tags or {})
    metric = next((tag for tag in metric_tags if tag in tags), None)
    try:
        run_url = ctx.registry.run_url(version.run_id) if version.run_id else None
    except Exception:  # a deleted run keeps its registered version: the page shows the rest
        run_url = None
    return Champion(
        version=str(version.version),
        trained_at=datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC),
        metric=metric,
        value=tags.get(metric) if metric else None,
        run_url=run_url,
        version_url=ctx.registry.version_url(model_name, version.version),
    ), ""


def summaries_of(ctx: ServingContext, system: str) -> list[dict]:
    found = []
    for info in ctx.store.list_objects(summary_prefix(system)):
        if info.key.count("/") != 2 or not info.key.endswith(".json"):
            continue
        try:
            summary = json.loads(ctx.store.get_bytes(info.key))
        except (ObjectNotFound, ValueError):
            continue  # removed meanwhile, or written by hand: the others still show
        summary["materialized"] = datetime.fromisoformat(summary["materialized_at"])
        found.append(summary)
    return sorted(found, key=lambda summary: summary.get("asset", ""))


def build_view(ctx: ServingContext, module) -> SystemView:
    name = module.__name__.rsplit(".", 1)[-1]
    view = SystemView(name=name, title=module.TITLE, home=module.HOME)
    view.champion, view.champion_note = champion_of(ctx, name)
    view.summaries = summaries_of(ctx, name)
    if view.summaries:
        view.last_materialized = max(summary["materialized"] for summary in view.summaries)
    return view


def build_router(ctx: ServingContext, systems: list) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    def overview(request: Request):
        views = [build_view(ctx, module) for module in systems]
        return ctx.templates.TemplateResponse(
            request, "overview.html", {"views": views, "age": age, "dagster": ctx.settings.dagster_ui_url.rstrip("/")}
        )

    @router.get("/overview/charts/{system}/{asset}.png")
    def chart(system: str, asset: str) -> Response:
        try:
            return Response(ctx.store.get_bytes(summary_key(system, asset, "png")), media_type="image/png")
        except (ObjectNotFound, ValueError):
            raise HTTPException(404, f"no chart {system}/{asset} yet: materialize that monitoring asset") from None

    @router.get("/overview/reports/{system}/{asset}.html", response_class=HTMLResponse)
    def report(system: str, asset: str) -> Response:
        """The Evidently report of the latest materialization of a drift asset."""
        try:
            summary = json.loads(ctx.store.get_bytes(summary_key(system, asset)))
            return HTMLResponse(ctx.store.get_bytes(summary["report_key"]))
        except (ObjectNotFound, ValueError, KeyError, TypeError):
            raise HTTPException(404, f"no drift report for {system}/{asset} yet") from None

    return router
