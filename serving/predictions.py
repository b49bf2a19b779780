"""`GET /predictions/{prediction_id}`: one logged answer of any system, with its full receipt."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from serving.inference_log import ID_PATTERN
from serving.receipts import Receipts


class LoggedPrediction(BaseModel):
    prediction_id: str
    logged_at: str = Field(description="When the answer was given (UTC, ISO 8601)")
    system: str
    route: str
    model_name: str | None
    model_version: str | None
    inputs: dict = Field(description="The request's input features (image statistics for scones)")
    output: Any = Field(description="The answer as it was sent, without its prediction_id")
    lineage: dict | None = Field(description="What served it, as recorded at answer time")


class PredictionReceipt(BaseModel):
    prediction: LoggedPrediction
    receipt: dict = Field(
        description="model version → MLflow run (with URL) → the Dagster run that made the model "
        "→ data versions and partitions of its training data → code version; "
        "`missing` says which links cannot be followed and why"
    )


def build_router(ctx, systems: list[str]) -> APIRouter:
    router = APIRouter(tags=["platform"])
    # Read once when the app is created; the receipt opens the instance only when first asked for one.
    receipts = Receipts(ctx.registry, os.environ.get("DAGSTER_HOME"))

    @router.get(
        "/predictions/{prediction_id}",
        response_model=PredictionReceipt,
        summary="A logged prediction and its receipt (model, MLflow run, Dagster run, data and code versions)",
        responses={404: {"description": "No prediction with this id in the inference log"}},
    )
    def prediction(
        prediction_id: Annotated[
            str, Path(pattern=ID_PATTERN, description=("The `prediction_id` of an answer (32 hex digits)"))
        ],
    ) -> PredictionReceipt:
        prediction_id = prediction_id.lower()
        row = ctx.inference_log.find(prediction_id, systems)
        if row is None:
            raise HTTPException(
                404,
                f"prediction {prediction_id} is not in the inference log (unknown, or a "
                "deploy prediction not computed yet)",
            )
        logged = LoggedPrediction(
            **{
                **row,
                "logged_at": row["logged_at"].isoformat(),
                "inputs": json.loads(row["inputs"] or "{}"),
                "output": json.loads(row["output"]) if row["output"] else None,
                "lineage": json.loads(row["lineage"]) if row["lineage"] else None,
            }
        )
        return PredictionReceipt(prediction=logged, receipt=receipts.build(row))

    return router
