"""Pistachio routes: `POST /classify` (the original's Flask endpoint, same path and answer) and a form page."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.types import FiniteFloat

from mlops_assets.pistachio.constants import CLASS_LABELS, FEATURES, MODEL_NAME
from mlops_assets.pistachio.model_file import load_pipeline
from serving.context import ServingContext
from serving.lineage import Lineage

TITLE = "Pistachio classifier"
HOME = "/pistachio"

EXAMPLE = {
    "area": 73107,
    "perimeter": 1161.807,
    "major_axis": 442.4074,
    "minor_axis": 217.7261,
    "eccentricity": 0.8705,
    "eqdiasq": 305.0946,
    "solidity": 0.9424,
    "convex_area": 77579,
    "extent": 0.771,
    "aspect_ratio": 2.0319,
    "roundness": 0.6806,
    "compactness": 0.6896,
    "shapefactor_1": 0.0061,
    "shapefactor_2": 0.003,
    "shapefactor_3": 0.4756,
    "shapefactor_4": 0.9664,
}

# The 16 features, each required and a finite number; pydantic's 422 names every missing or non-numeric one.
# Strict: a JSON boolean is not a number (ints are still accepted), in the hot path as in the route.
PistachioFeatures = create_model(
    "PistachioFeatures",
    __config__=ConfigDict(strict=True, json_schema_extra={"examples": [EXAMPLE]}),
    **{name: (FiniteFloat, Field(description=f"{name} of the kernel image")) for name in FEATURES},
)


class Classification(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    prediction_id: str = Field(description="Id of this answer in the inference log: GET /predictions/{prediction_id}")
    Type: Literal[CLASS_LABELS] = Field(description="Predicted pistachio type")
    Model: str = Field(default=MODEL_NAME, description="Registered model name (as the original answered)")
    lineage: Lineage


class LinearChampion:
    """The champion pipeline reduced to its arithmetic: one dot product per request instead of three
    scikit-learn validation passes (~0.3 ms). Only used when the pipeline is exactly DictVectorizer +
    binary LogisticRegression; anything else is served by the pipeline itself."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.linear = None
        vectorizer = pipeline.named_steps.get("vectorizer")
        classifier = pipeline.named_steps.get("classifier")
        if (
            type(vectorizer).__name__ == "DictVectorizer"
            and type(classifier).__name__ == "LogisticRegression"
            and len(classifier.classes_) == 2
            and set(vectorizer.feature_names_) <= set(FEATURES)
        ):
            # Plain floats: for 16 terms a Python sum is several times cheaper than building a numpy array.
            self.linear = (
                tuple(zip(vectorizer.feature_names_, map(float, classifier.coef_[0]), strict=False)),
                float(classifier.intercept_[0]),
                classifier.classes_,
            )

    def predict_one(self, features: dict[str, float]) -> int:
        if self.linear is None:
            return int(self.pipeline.predict([features])[0])
        terms, intercept, classes = self.linear
        score = sum(coef * features[name] for name, coef in terms) + intercept
        return int(classes[1] if score > 0 else classes[0])


def answers(lineage: Lineage) -> tuple[bytes, bytes]:
    """Both possible response bodies of one champion, serialized once (validated by the response model)."""
    return tuple(
        Classification(prediction_id="", Type=label, Model=MODEL_NAME, lineage=lineage)
        .model_dump_json(exclude={"prediction_id"})
        .encode()
        for label in CLASS_LABELS
    )


def printable_errors(error: ValidationError) -> list[dict]:
    """pydantic's errors without raw bytes: a body that is not UTF-8 is echoed back as text, not a 500."""
    errors = error.errors(include_url=False)
    for e in errors:
        if isinstance(e.get("input"), bytes):
            e["input"] = e["input"].decode("utf-8", "replace")
    return errors


def parse_features(body: bytes) -> dict[str, float]:
    """pydantic-core parses and validates the JSON in one pass; errors become FastAPI's usual 422 detail."""
    try:
        return PistachioFeatures.model_validate_json(body).model_dump()
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in jsonable_encoder(printable_errors(error))]
        ) from None


def build_router(ctx: ServingContext) -> APIRouter:
    router = APIRouter(tags=["pistachio"])
    champion = ctx.watch_champion(MODEL_NAME, loader=lambda uri: LinearChampion(load_pipeline(ctx.registry, uri)))
    # (LoadedModel, its two answers, its lineage as JSON), rebuilt when the champion changes. The log gets the
    # lineage as text: a row that holds only strings and bytes leaves the garbage collector's lists at once.
    serialized: list = [None, None, None]

    def answer(features: dict[str, float], request_body: bytes) -> bytes | None:
        loaded = champion.current
        if loaded is None:
            return None
        if serialized[0] is not loaded:
            serialized[:] = [loaded, answers(loaded.lineage), loaded.lineage.model_dump_json()]
        body = serialized[1][loaded.model.predict_one(features)]
        # The inputs are logged as the client sent them (validated, so every feature is in them): serializing 16
        # floats again cost more than the rest of logging, on the hottest route.
        prediction_id = ctx.inference_log.record(
            "pistachio", "/classify", request_body, body, MODEL_NAME, loaded.lineage.model_version, serialized[2]
        )
        # The answer stays pre-serialized: the id is spliced in as its last member.
        return b'%s,"prediction_id":"%s"}' % (body[:-1], prediction_id.encode())

    def classify_hot(body: bytes) -> bytes | None:
        """The successful case, answered before FastAPI's routing (see serving.hot_path); None → the route."""
        try:
            features = PistachioFeatures.model_validate_json(body).model_dump()
        except ValidationError:
            return None
        return answer(features, body)

    ctx.hot_paths["/classify"] = classify_hot

    @router.post(
        "/classify",
        response_model=Classification,
        summary="Classify a pistachio kernel (Kirmizi or Siit) from its 16 shape features",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PistachioFeatures.model_json_schema()}},
            }
        },
        responses={
            422: {"description": "A feature is missing or not a finite number (named in detail)"},
            503: {"description": "No champion model has been promoted yet"},
        },
    )
    async def classify(request: Request) -> Response:
        # The body is parsed by pydantic directly and the answer is pre-serialized: FastAPI's generic body and
        # response handling cost more than the model itself. Pure arithmetic, so it runs on the event loop.
        request_body = await request.body()
        body = answer(parse_features(request_body), request_body)
        if body is None:
            raise HTTPException(503, f"no {MODEL_NAME} champion yet: run the pistachio training job first")
        return Response(body, media_type="application/json")

    @router.get(HOME, response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request):
        loaded = champion.current
        return ctx.templates.TemplateResponse(
            request,
            "pistachio_home.html",
            {
                "features": FEATURES,
                "example": EXAMPLE,
                "model_name": MODEL_NAME,
                "lineage": loaded.lineage if loaded else None,
            },
        )

    return router
