"""The serving app: `uvicorn serving.app:create_app --factory`.

Each system contributes one router built from the shared `ServingContext` (its `serving/<system>.py`, found by
`mlops_assets.systems`); the app itself only composes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from fastapi import FastAPI

from mlops_assets.systems import system_routers
from resources.buckets import ensure_buckets
from resources.settings import PlatformSettings
from serving import feedback, hot_path, overview, predictions
from serving.context import ServingContext

# Each entry: a module exposing `build_router(ctx) -> APIRouter` and `TITLE`, `HOME` (its landing page).
SYSTEMS = system_routers()


def create_app(settings: PlatformSettings | None = None, poll_seconds: float | None = None) -> FastAPI:
    settings = settings or PlatformSettings.from_env()
    if poll_seconds is None:
        poll_seconds = float(os.environ.get("MLOPS_SERVING_POLL_SECONDS", "1.0"))
    ensure_buckets(settings)
    ctx = ServingContext.from_settings(settings, poll_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        ctx.poller.start()
        ctx.inference_log.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            ctx.poller.stop()
            await ctx.inference_log.aclose()  # what is still buffered is written before the process ends

    app = FastAPI(
        title="MLOps platform serving API",
        version="0.1.0",
        lifespan=lifespan,
        description="Predictions from the latest promoted models of the platform's ML systems.",
    )
    app.state.ctx = ctx
    for system in SYSTEMS:
        app.include_router(system.build_router(ctx))
    app.include_router(predictions.build_router(ctx, [system.__name__.rsplit(".", 1)[-1] for system in SYSTEMS]))
    app.include_router(feedback.build_router(ctx))
    app.include_router(overview.build_router(ctx, SYSTEMS))
    hot_path.install(app, ctx.hot_paths)
    static_openapi = app.openapi

    def openapi() -> dict:
        # Regenerated per request: deployments come and go while the server runs, each with its own schema.
        app.openapi_schema = None
        document = static_openapi()
        for hook in ctx.openapi_hooks:
            hook(document)
        return document

    app.openapi = openapi

    @app.get("/health", tags=["platform"], summary="Liveness, and which models and snapshots are loaded")
    def health() -> dict:
        loaded = {}
        for watcher in ctx.poller.watchers:
            name = getattr(watcher, "model_name", None) or getattr(watcher, "system", "?")
            loaded[f"{type(watcher).__name__}:{name}"] = watcher.current is not None
        return {"status": "ok", "loaded": loaded}

    return app
