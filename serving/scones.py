"""Scones routes: classify an uploaded image with the champion (the original's SageMaker endpoint) and a page."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from mlops_assets.scones.constants import CHART_KEY, CLASS_NAMES, DEFAULT_THRESHOLD, MODEL_NAME, THRESHOLD_FAILURE
from mlops_assets.scones.imaging import (
    ALLOWED_FORMATS,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    ImageRejected,
    decode_image,
    model_input,
)
from mlops_assets.scones.workflow import PASSED, passes
from resources.object_store import ObjectNotFound
from serving.context import ServingContext
from serving.lineage import Lineage

TITLE = "Scones Unlimited: bicycle or motorcycle"
HOME = "/scones"

# Multipart framing around the file: boundaries, headers and the threshold field are well under this.
MULTIPART_OVERHEAD = 16 * 1024


class PNGResponse(Response):
    media_type = "image/png"


class Classification(BaseModel):
    prediction_id: str = Field(description="Id of this answer in the inference log: GET /predictions/{prediction_id}")
    filename: str | None = Field(description="Name of the uploaded file")
    inferences: list[float] = Field(description="[p_bicycle, p_motorcycle], the original endpoint's answer")
    probabilities: dict[str, float] = Field(description="The same probabilities by class name")
    predicted_class: str
    confidence: float = Field(description="The highest class probability")
    threshold: float
    passed: bool = Field(description="Whether any probability reaches the threshold (the workflow's filter)")
    verdict: str = Field(description=f"'{PASSED}' or '{THRESHOLD_FAILURE}'")
    lineage: Lineage


def _error(status: int, field: str, reason: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": [{"loc": ["body", field], "msg": reason}]})


class BoundedUploadRoute(APIRoute):
    """Refuses oversized bodies from the Content-Length header, before the multipart parser spools them."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            if request.method == "POST":
                length = request.headers.get("content-length")
                if length is None:
                    return _error(411, "file", "send a Content-Length header with the upload")
                if not length.isdigit() or int(length) > MAX_IMAGE_BYTES + MULTIPART_OVERHEAD:
                    return _error(
                        413, "file", f"the upload has {length} bytes; the image limit is {MAX_IMAGE_BYTES:,} bytes"
                    )
            return await handler(request)

        return bounded


def build_router(ctx: ServingContext) -> APIRouter:
    router = APIRouter(prefix=HOME, tags=["scones"], route_class=BoundedUploadRoute)
    champion = ctx.watch_champion(MODEL_NAME)

    @router.post(
        "/classify",
        response_model=Classification,
        summary="Bicycle or motorcycle?",
        description=f"Upload one image ({', '.join(ALLOWED_FORMATS)}, at most {MAX_IMAGE_BYTES:,} bytes "
        f"and {MAX_IMAGE_PIXELS:,} pixels). It is scaled to 32x32 like the CIFAR training "
        "images and classified by the champion model.",
        responses={
            400: {"description": "Malformed multipart body"},
            411: {"description": "No Content-Length"},
            413: {"description": "Too large"},
            415: {"description": "Not an accepted image format"},
            422: {"description": "Not a decodable image, or a bad threshold"},
            503: {"description": "No model has been promoted to champion yet"},
        },
    )
    # minLength: an empty upload is refused (422), so the schema says a file has at least one byte.
    def classify(
        file: UploadFile = File(description="The image to classify", json_schema_extra={"minLength": 1}),
        threshold: float = Query(
            DEFAULT_THRESHOLD, ge=0.0, le=1.0, description="Probability an inference must reach to pass"
        ),
    ) -> Classification:
        data = file.file.read(MAX_IMAGE_BYTES + 1)
        try:
            image = decode_image(data)
            row = model_input(image)
        except ImageRejected as exc:
            raise HTTPException(exc.status, [{"loc": ["body", "file"], "msg": exc.reason}]) from None
        loaded = champion.current
        if loaded is None:
            raise HTTPException(503, f"no '{champion.alias}' version of {MODEL_NAME} yet: materialize the scones group")
        inferences = [float(p) for p in loaded.model.predict_proba(row)[0]]
        best = max(range(len(inferences)), key=inferences.__getitem__)
        ok = passes(inferences, threshold)
        answer = Classification(
            prediction_id="",
            filename=file.filename,
            inferences=inferences,
            probabilities=dict(zip(CLASS_NAMES, inferences, strict=False)),
            predicted_class=CLASS_NAMES[best],
            confidence=inferences[best],
            threshold=threshold,
            passed=ok,
            verdict=PASSED if ok else THRESHOLD_FAILURE,
            lineage=loaded.lineage,
        )
        # Statistics, not pixels: what drift of the inputs is measured on (the model sees the 32x32 row).
        inputs = {
            "width": image.size[0],
            "height": image.size[1],
            "mean_brightness": float(row.mean()),
            "std_brightness": float(row.std()),
        }
        answer.prediction_id = ctx.inference_log.record(
            "scones", "/scones/classify", inputs, answer, MODEL_NAME, loaded.lineage.model_version, loaded.lineage
        )
        return answer

    @router.get(
        "/monitoring.png",
        summary="Max confidence over time of the event-driven workflow",
        response_class=PNGResponse,
        responses={200: {"content": {"image/png": {}}}, 404: {"description": "Not drawn yet"}},
    )
    def monitoring_chart() -> Response:
        try:
            data = ctx.store.get_bytes(CHART_KEY)
        except ObjectNotFound:
            raise HTTPException(
                404, "the confidence chart has not been drawn yet: materialize scones/confidence_chart"
            ) from None
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})

    @router.get("", response_class=HTMLResponse, include_in_schema=False)
    def upload_page(request: Request):
        return ctx.templates.TemplateResponse(
            request,
            "scones_classify.html",
            {
                "model": champion.current.lineage if champion.current else None,
                "threshold": DEFAULT_THRESHOLD,
                "max_bytes": MAX_IMAGE_BYTES,
                "formats": ALLOWED_FORMATS,
                "has_chart": ctx.store.exists(CHART_KEY),
            },
        )

    return router
