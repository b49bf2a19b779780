"""`POST /api/{deployment}/feedback`: the true value of a logged prediction, arriving after the answer.

Feedback rows are append-only Parquet files in the object store (`deploy/feedback/hour=YYYY-MM-DD-HH/`), read by
the `deploy/realized_performance` asset. A prediction id is accepted only when the inference log holds it.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from serving.context import ServingContext

SYSTEM = "deploy"
LOG_PREFIX = f"{SYSTEM}/inference_log/"
FEEDBACK_PREFIX = f"{SYSTEM}/feedback/"


class Feedback(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"prediction_id": "0f8e4c2a9b7d4e1f8a6c3b2d1e0f9a8b", "actual": 112.5}]},
    )

    prediction_id: str = Field(pattern=r"^[0-9a-fA-F]{32}$", description="The id the prediction was answered with")
    actual: StrictBool | StrictInt | StrictFloat | StrictStr = Field(
        description="The true value: a number for a regressor, a class label for a classifier"
    )


class FeedbackAccepted(BaseModel):
    prediction_id: str
    deployment: str
    received_at: datetime


class LoggedIds:
    """The prediction ids in the deploy inference log. Log files never change once written, so each is read
    once (its id column only) and remembered."""

    def __init__(self, store):
        self.store = store
        self.ids: set[str] = set()
        self.files: set[str] = set()
        self.lock = threading.Lock()

    def contains(self, prediction_id: str) -> bool:
        if prediction_id in self.ids:
            return True
        import pyarrow.parquet as pq

        with self.lock:
            for info in self.store.list_objects(LOG_PREFIX):
                if info.key in self.files or not info.key.endswith(".parquet"):
                    continue
                table = pq.read_table(io.BytesIO(self.store.get_bytes(info.key)), columns=["prediction_id"])
                self.ids.update(table.column("prediction_id").to_pylist())
                self.files.add(info.key)
        return prediction_id in self.ids


def feedback_parquet(prediction_id: str, deployment: str, actual, received_at: datetime) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("prediction_id", pa.string()),
            ("deployment", pa.string()),
            ("actual", pa.string()),
            ("received_at", pa.timestamp("us", tz="UTC")),
        ]
    )
    table = pa.Table.from_pylist(
        [
            {
                "prediction_id": prediction_id,
                "deployment": deployment,
                "actual": json.dumps(actual),
                "received_at": received_at,
            }
        ],
        schema=schema,
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def build_router(ctx: ServingContext) -> APIRouter:
    router = APIRouter(tags=["deploy"])
    logged = LoggedIds(ctx.store)

    @router.post(
        "/api/{deployment}/feedback",
        status_code=201,
        response_model=FeedbackAccepted,
        summary="Record the true value of an answered prediction (realized performance)",
        responses={
            400: {"description": "The body is not parsable JSON"},
            404: {"description": "The prediction id is not in the deploy inference log"},
            422: {"description": "A missing or malformed field (named in detail)"},
        },
    )
    def feedback(deployment: str, body: Feedback) -> FeedbackAccepted:
        if not logged.contains(body.prediction_id):
            raise HTTPException(
                404,
                [
                    {
                        "loc": ["body", "prediction_id"],
                        "msg": f"prediction {body.prediction_id} is not in the deploy inference log",
                    }
                ],
            )
        now = datetime.now(UTC)
        key = f"{FEEDBACK_PREFIX}hour={now:%Y-%m-%d-%H}/{uuid.uuid4().hex}.parquet"
        ctx.store.put_bytes(key, feedback_parquet(body.prediction_id, deployment, body.actual, now))
        return FeedbackAccepted(prediction_id=body.prediction_id, deployment=deployment, received_at=now)

    return router
