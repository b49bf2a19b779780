"""Tables as Delta Lake on S3 (MLOPS_TABLE_FORMAT=delta): the table-access resource behaves the same in both
formats, concurrent commits lose nothing, and Titanic and Pistachio materialize their tables as Delta tables in a
moto_server bucket, read back with deltalake and with DuckDB over Arrow, with no DuckDB file written."""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest

from mlops_assets.pistachio.automation import TRAINING_JOB
from resources import build_tables
from resources.settings import PlatformSettings
from resources.tables import DeltaTables, DuckDBTables, Tables
from tests.support import isolated_environment, platform_environment, require_shared_data

pytestmark = [pytest.mark.s3]

HOUR = datetime(2026, 3, 10, 14, tzinfo=UTC)
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("logged_at", pa.timestamp("us", tz="UTC")),
        ("made_at", pa.timestamp("us")),
        ("n", pa.int64()),
    ]
)


def rows(ids: list[str], at: datetime) -> pa.Table:
    return pa.table(
        {
            "id": ids,
            "logged_at": [at + timedelta(minutes=i) for i in range(len(ids))],
            "made_at": [(at + timedelta(minutes=i)).replace(tzinfo=None) for i in range(len(ids))],
            "n": list(range(len(ids))),
        },
        SCHEMA,
    )


def ids(tables: Tables) -> list[str]:
    return tables.query("SELECT id FROM demo.log ORDER BY logged_at, id")["id"].tolist()


@pytest.fixture(params=["duckdb", "delta"])
def tables(request, tmp_path) -> Tables:
    env = {"MLOPS_HOME": str(tmp_path), "MLOPS_TABLE_FORMAT": request.param}
    return build_tables(PlatformSettings.from_env(env))["warehouse"]


def test_the_table_resource_appends_and_replaces_partitions_alike_in_both_formats(tables, tmp_path):
    assert not tables.exists("demo.log")
    tables.ensure("demo.log", SCHEMA)
    assert tables.exists("demo.log") and ids(tables) == []
    tables.append("demo.log", rows(["a", "b"], HOUR))
    tables.append("demo.log", rows(["z"], HOUR + timedelta(hours=1)))
    # The hour 14:00 written again, twice: replaced, never appended; the next hour is untouched.
    for _ in range(2):
        tables.replace_rows("demo.log", rows(["a", "b", "c"], HOUR), "logged_at", HOUR, HOUR + timedelta(hours=1))
        assert ids(tables) == ["a", "b", "c", "z"]
    tables.replace_rows("demo.log", SCHEMA.empty_table(), "logged_at", HOUR, HOUR + timedelta(hours=1))
    assert ids(tables) == ["z"]
    # Parameters, naive timestamps read back naive (UTC by convention), a join across two tables.
    tables.append("demo.names", pd.DataFrame({"id": ["z"], "name": ["zed"]}))
    joined = tables.query(
        "SELECT l.id, l.made_at, n.name FROM demo.log l JOIN demo.names n USING (id) WHERE l.made_at >= ?",
        [HOUR.replace(tzinfo=None)],
    )
    assert joined.to_dict(orient="records") == [{"id": "z", "made_at": pd.Timestamp("2026-03-10 15:00"), "name": "zed"}]
    assert isinstance(tables, DeltaTables) == (tmp_path / "tables" / "demo" / "log" / "_delta_log").is_dir()
    assert isinstance(tables, DuckDBTables) == (tmp_path / "warehouse.duckdb").exists()


def s3(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_scones_captures_and_the_hourly_inference_log_work_alike_in_both_formats(tables, tmp_path):
    from mlops_assets.common.inference_log import inference_log_asset, scones_event_rows
    from mlops_assets.scones.capture import Capture, captured_versions, record_many
    from mlops_assets.scones.monitoring import recent_captures
    from mlops_assets.scones.workflow import Verdict
    from resources.object_store import LocalObjectStore

    def capture(key: str, minute: int) -> Capture:
        verdict = Verdict.from_inferences([0.1, 0.9], 0.85)
        return Capture(HOUR + timedelta(minutes=minute), None, "b", key, "e1", verdict, 0.85, "m", "4", "run")

    assert captured_versions(tables, ["scones/incoming/a.png"]) == {}
    record_many(tables, [capture("scones/incoming/a.png", 1), capture("scones/incoming/b.png", 2)])
    assert captured_versions(tables, ["scones/incoming/a.png"]) == {("scones/incoming/a.png", "e1"): "run"}
    chart = recent_captures(tables)
    assert chart["s3_key"].tolist() == ["scones/incoming/a.png", "scones/incoming/b.png"]
    assert str(chart["captured_at"].dt.tz) in {"UTC", "Etc/UTC"}
    # The hour's partition of the inference log joins the captures of the hour (route `event`), idempotently.
    resources = {"warehouse": tables, "object_store": LocalObjectStore(root=str(tmp_path / "objects"))}
    asset = inference_log_asset("scones", scones_event_rows)
    for _ in range(2):
        assert dg.materialize([asset], partition_key="2026-03-10-14:00", resources=resources).success
    log = tables.query("SELECT route, logged_at FROM scones.inference_log ORDER BY logged_at")
    assert log["route"].tolist() == ["event", "event"] and log["logged_at"].iloc[0] == pd.Timestamp(
        HOUR + timedelta(minutes=1)
    )


DAYS = dg.DailyPartitionsDefinition(start_date="2026-03-01")
WEEKS = dg.StaticPartitionsDefinition(["w1", "w2"])


@dg.asset(key_prefix=["demo"], partitions_def=DAYS, metadata={"partition_expr": "event_date"})
def daily(context) -> pd.DataFrame:
    day = pd.Timestamp(context.partition_key)  # naive, as Titanic's event_date
    return pd.DataFrame({"event_date": [day, day], "n": [day.day, -day.day]})


@dg.asset(key_prefix=["demo"], ins={"daily": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())})
def every_day(daily: pd.DataFrame) -> pd.DataFrame:
    return daily


@dg.asset(key_prefix=["demo"], partitions_def=WEEKS, metadata={"partition_expr": "week"})
def weekly(context) -> pd.DataFrame:
    return pd.DataFrame({"week": [context.partition_key] * 3, "n": [1, 2, 3]})


@dg.asset(
    key_prefix=["demo"],
    partitions_def=WEEKS,
    metadata={"partition_expr": "week"},
    ins={"weekly": dg.AssetIn(key=["demo", "weekly"])},
)
def weekly_sum(weekly: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"week": weekly["week"].unique(), "total": [int(weekly["n"].sum())]})


def test_the_delta_io_manager_reads_and_replaces_daily_and_weekly_partitions(tmp_path):
    resources = build_tables(PlatformSettings.from_env({"MLOPS_HOME": str(tmp_path), "MLOPS_TABLE_FORMAT": "delta"}))
    for day in ["2026-03-01", "2026-03-02", "2026-03-01"]:  # the first day twice: replaced, not appended
        assert dg.materialize([daily], partition_key=day, resources=resources).success
    result = dg.materialize([daily, every_day], selection=[every_day], resources=resources)
    frame = result.output_for_node("demo__every_day")
    assert sorted(frame["n"]) == [-2, -1, 1, 2] and frame["event_date"].dt.tz is None
    for week in ["w1", "w2", "w1"]:
        assert dg.materialize([weekly, weekly_sum], partition_key=week, resources=resources).success
    tables = resources["warehouse"]
    assert tables.query("SELECT week, total FROM demo.weekly_sum ORDER BY 1").values.tolist() == [["w1", 6], ["w2", 6]]
    assert tables.query("SELECT count(*) FROM demo.weekly")["count_star()"].tolist() == [6]


def delta_env(tmp_path, moto_endpoint, data) -> dict[str, str]:
    bucket = f"delta-tables-{os.getpid()}"
    s3(moto_endpoint).create_bucket(Bucket=bucket)
    return {
        **platform_environment(tmp_path / "mlops", data),
        "MLOPS_OBJECT_STORE": "s3",
        "MLOPS_TABLE_FORMAT": "delta",
        "MLOPS_S3_BUCKET": bucket,
        "MLOPS_S3_PREFIX": "team",
        "MLOPS_S3_ENDPOINT_URL": moto_endpoint,
        "MLOPS_MODEL_BUCKET": f"{bucket}-models",
        "MLOPS_MLFLOW_ARTIFACT_ROOT": (tmp_path / "mlartifacts").as_uri(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def test_concurrent_writers_to_one_delta_table_on_s3_lose_no_commit(tmp_path, moto_endpoint):
    # Sixteen appends from eight threads, each its own deltalake writer: every commit is a put-if-absent of the
    # next log entry, so the losers of a race retry on the next version instead of overwriting the winner's.
    with isolated_environment(delta_env(tmp_path, moto_endpoint, None)):
        tables = build_tables(PlatformSettings.from_env())["warehouse"]
        tables.ensure("demo.log", SCHEMA)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: tables.append("demo.log", rows([f"r{i}"], HOUR)), range(16)))
        assert sorted(ids(tables)) == sorted(f"r{i}" for i in range(16))


@pytest.fixture
def team_tables(tmp_path, moto_endpoint):
    """Titanic (two days) and Pistachio (a 1-configuration grid) bootstrapped with tables as Delta on S3."""
    from mlops_assets.definitions import defs
    from mlops_assets.pistachio import bootstrap as pistachio
    from mlops_assets.pistachio.sweep import Config
    from mlops_assets.titanic import bootstrap as titanic

    env = delta_env(tmp_path, moto_endpoint, require_shared_data())
    with isolated_environment(env), pytest.MonkeyPatch.context() as patch, dg.instance_for_test() as instance:
        patch.setattr(titanic, "BOOTSTRAP_DAYS", 2)
        patch.setattr("mlops_assets.pistachio.assets.full_grid", lambda: [Config(1.0, 100, "liblinear")])
        definitions = defs()
        titanic.bootstrap(definitions, instance, today=dt.date(2026, 3, 10))
        pistachio.bootstrap(definitions, instance)
        yield env, definitions, instance


@pytest.mark.realdata
def test_titanic_and_pistachio_tables_are_delta_tables_on_s3(team_tables, moto_endpoint):
    import deltalake

    env, definitions, instance = team_tables
    settings = PlatformSettings.from_env(env)
    assert settings.delta_root == f"s3://{env['MLOPS_S3_BUCKET']}/team/tables"
    pages = (
        s3(moto_endpoint)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=env["MLOPS_S3_BUCKET"], Prefix="team/tables/")
    )
    logs = {
        "/".join(o["Key"].split("/")[2:4]) for p in pages for o in p.get("Contents", []) if "/_delta_log/" in o["Key"]
    }
    assert {
        "titanic/raw_passengers",
        "titanic/feature_group",
        "titanic/daily_passenger",
        "titanic/batch_prediction",
        "titanic/prediction_history",
        "pistachio/raw_snapshot",
        "pistachio/snapshot_splits",
        "pistachio/model_sweep",
    } <= logs

    # deltalake reads them directly; the daily partitions are one row per day, each written by its own run.
    options = definitions.resources["warehouse"].storage_options
    assert options["AWS_ENDPOINT_URL"] == moto_endpoint and "AWS_SECRET_ACCESS_KEY" not in options
    group = deltalake.DeltaTable(f"{settings.delta_root}/titanic/feature_group", storage_options=options)
    assert len(group.to_pandas()) == 891 + 2
    daily = deltalake.DeltaTable(f"{settings.delta_root}/titanic/daily_passenger", storage_options=options)
    assert sorted(str(d.date()) for d in daily.to_pandas()["event_date"]) == ["2026-03-08", "2026-03-09"]

    # Ad-hoc SQL through DuckDB over Arrow, across systems' tables.
    tables = definitions.resources["warehouse"]
    history = tables.query("SELECT event_date, prediction, label FROM titanic.prediction_history ORDER BY 1")
    assert len(history) == 2 and history["event_date"].dt.tz is None
    raw = tables.query("SELECT snapshot, count(*) AS n FROM pistachio.raw_snapshot GROUP BY 1 ORDER BY 1")
    assert raw.values.tolist() == [
        ["pistachio_20230710", 900],
        ["pistachio_20230717", 1300],
        ["pistachio_20230724", 1718],
    ]
    # A weekly partition materialized again replaces its own rows only.
    job = definitions.resolve_job_def(TRAINING_JOB)
    assert job.execute_in_process(
        instance=instance,
        partition_key="pistachio_20230717",
        asset_selection=[dg.AssetKey(["pistachio", "raw_snapshot"])],
    ).success
    again = tables.query("SELECT snapshot, count(*) AS n FROM pistachio.raw_snapshot GROUP BY 1 ORDER BY 1")
    assert again.values.tolist() == raw.values.tolist()

    # Nothing went to a local DuckDB file.
    assert not settings.duckdb_path.exists()
    assert not list(settings.home.rglob("*.duckdb"))


def test_the_delta_root_and_its_storage_options_follow_the_s3_settings(tmp_path):
    from resources import delta_storage_options
    from resources.buckets import required_buckets

    local = PlatformSettings.from_env({"MLOPS_HOME": str(tmp_path), "MLOPS_TABLE_FORMAT": "delta"})
    assert local.delta_root == str(tmp_path / "tables") and delta_storage_options(local) == {}
    s3_env = {
        "MLOPS_OBJECT_STORE": "s3",
        "MLOPS_S3_BUCKET": "team",
        "MLOPS_S3_PREFIX": "/prod/",
        "MLOPS_TABLE_FORMAT": "delta",
    }
    on_aws = PlatformSettings.from_env({**s3_env, "AWS_REGION": "eu-west-1"})
    assert on_aws.delta_root == "s3://team/prod/tables"
    assert delta_storage_options(on_aws) == {"AWS_REGION": "eu-west-1"}  # credentials: the environment's
    custom = PlatformSettings.from_env(
        {**s3_env, "MLOPS_S3_ENDPOINT_URL": "http://127.0.0.1:9000", "MLOPS_DELTA_ROOT": "s3://lake/tables/"}
    )
    assert custom.delta_root == "s3://lake/tables"
    assert delta_storage_options(custom) == {
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ALLOW_HTTP": "true",
    }
    assert ("lake", ("Delta tables",)) in [(b.name, b.purposes) for b in required_buckets(custom, {})]
    with pytest.raises(ValueError, match="MLOPS_TABLE_FORMAT must be 'duckdb' or 'delta', got 'iceberg'"):
        PlatformSettings.from_env({"MLOPS_TABLE_FORMAT": "iceberg"})
