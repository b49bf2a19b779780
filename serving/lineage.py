"""The lineage receipt carried by every prediction response."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Lineage(BaseModel):
    model_name: str = Field(description="Registered model name in MLflow")
    model_version: str = Field(description="Registered model version that answered")
    alias: str = Field(default="champion", description="Registry alias the version was served under")
    mlflow_run_id: str | None = Field(default=None, description="MLflow run that trained the model")
    dagster_run_id: str | None = Field(default=None, description="Dagster run that materialized the model")
    mlflow_run_url: str | None = Field(default=None, description="The training run's page in the MLflow UI")

    @classmethod
    def from_model_version(cls, version, alias: str = "champion", run_url: str | None = None) -> Lineage:
        tags = dict(version.tags or {})
        return cls(
            model_name=version.name,
            model_version=str(version.version),
            alias=alias,
            mlflow_run_id=version.run_id,
            dagster_run_id=tags.get("dagster_run_id"),
            mlflow_run_url=run_url,
        )
