"""The hourly `inference_log` assets: ingest of the API's files, idempotence, the joined batch and event rows,
and the automation condition that materializes each hour."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster_duckdb_pandas import DuckDBPandasIOManager

from mlops_assets.common import inference_log as module
from mlops_assets.common.inference_log import AUTOMATION, inference_log_asset, parse_inputs, row_id
from mlops_assets.scones.capture import Capture, record
from mlops_assets.scones.workflow import Verdict
from resources.object_store import LocalObjectStore
from resources.tables import DuckDBTables
from serving.inference_log import new_prediction_id
from serving.log_rows import encode, parquet_bytes

HOUR = datetime(2026, 3, 10, 14, tzinfo=UTC)
PARTITION = "2026-03-10-14:00"


def write_file(store, system: str, at: datetime, count: int, route: str = "/classify") -> list[str]:
    """One file as the API writes it, with `count` answers logged at `at` (ids and times as the writer makes)."""
    records = []
    for i in range(count):
        pid, logged_us = new_prediction_id(int((at.timestamp() + i / 1000) * 1e9))
        records.append((pid, logged_us, system, route, "m", "1", {"area": float(i), "kind": "x"}, {"Type": "A"}, None))
    store.put_bytes(
        f"{system}/inference_log/hour={at:%Y-%m-%d-%H}/{records[0][0]}.parquet",
        parquet_bytes([encode(r) for r in records]),
    )
    return [r[0] for r in records]


@pytest.fixture
def platform(tmp_path):
    store = LocalObjectStore(root=str(tmp_path / "objects"))
    database = str(tmp_path / "warehouse.duckdb")
    resources = {
        "object_store": store,
        "warehouse": DuckDBTables(database=database),
        "io_manager": DuckDBPandasIOManager(database=database),
    }
    return store, database, resources


def materialize(asset, resources, partition=PARTITION, instance=None):
    result = dg.materialize([asset], partition_key=partition, resources=resources, instance=instance)
    assert result.success
    return result.asset_materializations_for_node(asset.op.name)[0]


def table(database: str, system: str) -> pd.DataFrame:
    with duckdb.connect(database, read_only=True) as connection:
        return connection.execute(f"SELECT * FROM {system}.inference_log ORDER BY logged_at").df()


def test_an_hour_is_ingested_and_materializing_it_again_replaces_it(platform):
    store, database, resources = platform
    asset = inference_log_asset("pistachio")
    first = write_file(store, "pistachio", HOUR + timedelta(minutes=1), 3)
    next_hour = write_file(store, "pistachio", HOUR + timedelta(hours=1, minutes=2), 2)
    event = materialize(asset, resources)
    assert event.metadata["dagster/row_count"].value == 3 and event.metadata["files"].value == 1
    materialize(asset, resources, "2026-03-10-15:00")
    # More answers of 14:xx arrive (a late buffer); the hour is ingested again: replaced, not appended.
    late = write_file(store, "pistachio", HOUR + timedelta(minutes=59), 2)
    event = materialize(asset, resources)
    assert event.metadata["dagster/row_count"].value == 5 and event.metadata["files"].value == 2
    rows = table(database, "pistachio")
    assert list(rows["prediction_id"]) == first + late + next_hour  # each once, the other hour untouched
    assert list(rows.columns) == [
        "prediction_id",
        "logged_at",
        "system",
        "route",
        "model_name",
        "model_version",
        "inputs",
        "output",
        "lineage",
    ]
    features = parse_inputs(rows)
    assert list(features.columns) == ["area", "kind"] and list(features["area"]) == [0.0, 1.0, 2.0, 0.0, 1.0, 0.0, 1.0]


def test_an_hour_without_files_is_an_empty_partition(platform):
    _, database, resources = platform
    event = materialize(inference_log_asset("steam"), resources)
    assert event.metadata["dagster/row_count"].value == 0
    assert table(database, "steam").empty


def test_titanic_batch_predictions_and_scones_captures_join_their_hour(platform):
    store, database, resources = platform
    served = write_file(store, "titanic", HOUR + timedelta(minutes=5), 1, "/titanic/predict")
    with duckdb.connect(database) as connection:
        connection.execute("CREATE SCHEMA titanic")
        connection.execute(
            "CREATE TABLE titanic.feature_group AS SELECT 900 AS passenger_id, 1 AS pclass, "
            "0 AS sex_encoded, 2 AS embarked_encoded, 3 AS age_encoded, 4 AS fare_encoded"
        )
        # As batch_prediction stores them: predicted_at naive UTC; one row in the hour, one the hour after.
        connection.execute(
            "CREATE TABLE titanic.batch_prediction (event_date TIMESTAMP, predicted_at TIMESTAMP, "
            "passenger_id BIGINT, prediction BIGINT, model_name VARCHAR, model_version VARCHAR, "
            "mlflow_run_id VARCHAR)"
        )
        connection.execute(
            "INSERT INTO titanic.batch_prediction VALUES "
            "('2026-03-10', '2026-03-10 14:30:00', 900, 1, 'titanic_modal', '2', 'run-a'), "
            "('2026-03-11', '2026-03-10 15:00:00', 901, 0, 'titanic_modal', '2', 'run-a')"
        )
    record(
        resources["warehouse"],
        Capture(
            HOUR + timedelta(minutes=7),
            None,
            "bucket",
            "scones/incoming/a.png",
            "e1",
            Verdict.from_inferences([0.1, 0.9], 0.85),
            0.85,
            "scones_classifier",
            "4",
            "run-b",
        ),
    )
    materialize(inference_log_asset("titanic", module.titanic_batch_rows), resources)
    rows = table(database, "titanic")
    assert list(rows["route"]) == ["/titanic/predict", "batch"]
    batch = rows.iloc[1]
    assert batch["prediction_id"] == row_id("titanic", "batch", "2026-03-10", 900, pd.Timestamp("2026-03-10 14:30"))
    assert json.loads(batch["inputs"]) == {
        "pclass": 1,
        "sex_encoded": 0,
        "embarked_encoded": 2,
        "age_encoded": 3,
        "fare_encoded": 4,
    }
    assert json.loads(batch["output"])["prediction"] == 1 and batch["model_version"] == "2"
    assert rows.iloc[0]["prediction_id"] == served[0]
    materialize(inference_log_asset("titanic", module.titanic_batch_rows), resources)  # same ids, each row once
    assert len(table(database, "titanic")) == 2
    materialize(inference_log_asset("scones", module.scones_event_rows), resources)
    [event] = table(database, "scones").to_dict(orient="records")
    assert event["route"] == "event" and json.loads(event["output"])["predicted_class"] == "motorcycle"
    assert json.loads(event["inputs"]) == {"s3_key": "scones/incoming/a.png", "etag": "e1"}


def test_the_hour_is_requested_by_its_automation_condition_after_it_ends(platform):
    asset = inference_log_asset("deploy")
    assert asset.automation_conditions_by_key[asset.key] == AUTOMATION
    defs = dg.Definitions(assets=[asset], resources=platform[2])
    with dg.instance_for_test() as instance:
        before = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=datetime(2026, 3, 10, 15, 4, tzinfo=UTC)
        )
        assert before.total_requested == 0
        after = dg.evaluate_automation_conditions(
            defs=defs,
            instance=instance,
            cursor=before.cursor,
            evaluation_time=datetime(2026, 3, 10, 15, 6, tzinfo=UTC),
        )
        assert after.get_requested_partitions(asset.key) == {PARTITION}
