"""Titanic routes: the predictor form and API (the original's first UI) and the dashboard (its second UI)."""

from __future__ import annotations

import functools
import json
import time
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from mlops_assets.deploy.config import JsonInteger
from mlops_assets.titanic.constants import (
    AGE_BANDS,
    EMBARKED_CODES,
    FARE_BANDS,
    FEATURES,
    IMAGE_KEYS,
    MODEL_NAME,
    PORT_NAMES,
    RECENT_PREDICTIONS_KEY,
    SEX_CODES,
)
from resources.object_store import ObjectNotFound
from serving.context import ServingContext
from serving.lineage import Lineage

TITLE = "Titanic survival"
HOME = "/titanic"

AgeBand = Literal[AGE_BANDS]
FareBand = Literal[FARE_BANDS]
Port = Literal[tuple(PORT_NAMES)]


def _ticket_class(value: int) -> int:
    if value not in (1, 2, 3):
        raise ValueError("Input should be 1, 2 or 3")
    return value


class PNGResponse(Response):
    media_type = "image/png"


class Passenger(BaseModel):
    """The predictor form's choices, in words; they are mapped to the training encoding server-side."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"age_band": "25-30", "port": "Southampton", "sex": "female", "fare_band": "50-75", "pclass": 1}
            ]
        },
    )

    age_band: AgeBand = Field(description="Age band in years")
    port: Port = Field(description="Port of embarkation")
    sex: Literal["male", "female"]
    fare_band: FareBand = Field(description="Fare band in pounds")
    # Literal[1, 2, 3] alone would take `true` as 1: a JSON integer (1 or 1.0), checked against the classes.
    pclass: Annotated[
        JsonInteger, AfterValidator(_ticket_class), WithJsonSchema({"type": "integer", "enum": [1, 2, 3]})
    ] = Field(description="Ticket class")

    def encoded(self) -> dict[str, int]:
        return {
            "pclass": self.pclass,
            "sex_encoded": SEX_CODES[self.sex],
            # The original's UI numbered ports Cherbourg=0, Queenstown=1, Southampton=2, against the training
            # encoding S=0, C=1, Q=2; here the form's port name goes through the training encoding itself.
            "embarked_encoded": EMBARKED_CODES[PORT_NAMES[self.port]],
            "age_encoded": AGE_BANDS.index(self.age_band),
            "fare_encoded": FARE_BANDS.index(self.fare_band),
        }


class Prediction(BaseModel):
    prediction_id: str = Field(description="Id of this answer in the inference log: GET /predictions/{prediction_id}")
    survived: bool
    fate: Literal["survived", "did not survive"]
    probability_survived: float
    image_url: str
    features: dict[str, int]
    lineage: Lineage


class DomainTable:
    """The champion's answers for every possible form input (7 x 3 x 2 x 7 x 3 = 882), scored once per model.

    A forest costs ~10 ms per single-row call; one batch at load time makes every request a dict lookup.
    """

    def __init__(self, model):
        import pandas as pd  # built in the poller thread when a model loads, not when serving starts

        grid = pd.MultiIndex.from_product(
            [
                (1, 2, 3),
                tuple(SEX_CODES.values()),
                tuple(EMBARKED_CODES.values()),
                range(len(AGE_BANDS)),
                range(len(FARE_BANDS)),
            ],
            names=FEATURES,
        ).to_frame(index=False)
        probabilities = model.predict_proba(grid[FEATURES])
        survived_column = list(model.classes_).index(1) if 1 in model.classes_ else None
        predicted = model.classes_[probabilities.argmax(axis=1)]
        self.answers = {
            tuple(int(v) for v in row): (
                int(label),
                float(probabilities[i, survived_column]) if survived_column is not None else 0.0,
            )
            for i, (row, label) in enumerate(zip(grid[FEATURES].itertuples(index=False), predicted, strict=False))
        }

    def answer(self, features: dict[str, int]) -> tuple[int, float]:
        return self.answers[tuple(features[name] for name in FEATURES)]


@functools.lru_cache(maxsize=2)
def fate_png(survived: int) -> bytes:
    from mlops_assets.titanic.pictures import fate_picture

    return fate_picture(survived, "predicted fate")


def build_router(ctx: ServingContext) -> APIRouter:
    router = APIRouter(prefix="/titanic", tags=["titanic"])

    def load(uri: str) -> DomainTable:
        table = DomainTable(ctx.registry.load_sklearn(uri))
        # Drawn here, in the poller thread: the first picture imports matplotlib, which no request should wait for.
        fate_png(0), fate_png(1)
        return table

    champion = ctx.watch_champion(MODEL_NAME, loader=load)

    @router.post(
        "/predict",
        response_model=Prediction,
        summary="Predict a passenger's fate",
        responses={503: {"description": "No model has been promoted to champion yet"}},
    )
    def predict(passenger: Passenger) -> Prediction:
        loaded = champion.current
        if loaded is None:
            raise HTTPException(
                503, f"no '{champion.alias}' version of {MODEL_NAME} yet: materialize the titanic group"
            )
        features = passenger.encoded()
        label, p_survived = loaded.model.answer(features)
        survived = bool(label)
        answer = Prediction(
            prediction_id="",
            survived=survived,
            fate="survived" if survived else "did not survive",
            probability_survived=round(p_survived, 4),
            image_url=f"{HOME}/fate/{'survived' if survived else 'died'}.png",
            features=features,
            lineage=loaded.lineage,
        )
        answer.prediction_id = ctx.inference_log.record(
            "titanic", "/titanic/predict", features, answer, MODEL_NAME, loaded.lineage.model_version, loaded.lineage
        )
        return answer

    @router.get("/fate/{fate}.png", include_in_schema=False)
    def fate_image(fate: Literal["survived", "died"]) -> Response:
        return Response(
            fate_png(1 if fate == "survived" else 0),
            media_type="image/png",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @router.get(
        "/images/{name}.png",
        summary="A dashboard picture produced by the titanic group",
        response_class=PNGResponse,
        responses={200: {"content": {"image/png": {}}}, 404: {"description": "Not produced yet"}},
    )
    def image(name: Literal[tuple(IMAGE_KEYS)]) -> Response:
        try:
            data = ctx.store.get_bytes(IMAGE_KEYS[name])
        except ObjectNotFound:
            raise HTTPException(404, f"{name}.png has not been produced yet") from None
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})

    @router.get("/recent", summary="The last five daily predictions with their true fates")
    def recent() -> list[dict]:
        try:
            return json.loads(ctx.store.get_bytes(RECENT_PREDICTIONS_KEY))
        except ObjectNotFound:
            return []

    @router.get("", response_class=HTMLResponse, include_in_schema=False)
    def predictor_page(request: Request):
        return ctx.templates.TemplateResponse(
            request,
            "titanic_predictor.html",
            {
                "age_bands": AGE_BANDS,
                "fare_bands": FARE_BANDS,
                "ports": list(PORT_NAMES),
                "model": champion.current.lineage if champion.current else None,
            },
        )

    @router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    def dashboard_page(request: Request):
        available = {name: ctx.store.exists(key) for name, key in IMAGE_KEYS.items()}
        return ctx.templates.TemplateResponse(
            request, "titanic_dashboard.html", {"available": available, "recent": recent(), "stamp": int(time.time())}
        )

    return router
