"""The same Titanic code with the object store switched to S3 (a real moto_server on 127.0.0.1)."""

import boto3
import dagster as dg
import pytest

from mlops_assets.titanic.constants import IMAGE_KEYS, RECENT_PREDICTIONS_KEY
from resources.settings import PlatformSettings
from tests.titanic.conftest import bootstrapped


@pytest.mark.s3
def test_group_materializes_into_s3_and_serving_reads_it(tmp_path, s3_env, data_dir, monkeypatch):
    monkeypatch.setenv("MLOPS_S3_PREFIX", "platform")
    env = {**s3_env, "MLOPS_S3_PREFIX": "platform"}
    bucket = env["MLOPS_S3_BUCKET"]
    s3 = boto3.client("s3", endpoint_url=env["MLOPS_S3_ENDPOINT_URL"], region_name="us-east-1")

    platform, instance_cm = bootstrapped(env, tmp_path / "dagster", days=2)
    try:
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="platform/")["Contents"]}
        for name in ("latest_passenger", "actual_fate", "df_recent"):
            assert f"platform/{IMAGE_KEYS[name]}" in keys
            body = s3.get_object(Bucket=bucket, Key=f"platform/{IMAGE_KEYS[name]}")["Body"].read()
            assert body.startswith(b"\x89PNG")
        assert f"platform/{RECENT_PREDICTIONS_KEY}" in keys
        assert not (tmp_path / "mlops" / "objects").exists()  # nothing went to the local folder
        event = platform.instance.get_latest_materialization_event(dg.AssetKey(["titanic", "latest_passenger_image"]))
        assert event.asset_materialization.metadata["uri"].value.startswith(f"s3://{bucket}/platform/")

        from fastapi.testclient import TestClient

        from serving.app import create_app

        with TestClient(create_app(PlatformSettings.from_env())) as client:
            picture = client.get("/titanic/images/latest_passenger.png")
            assert (
                picture.status_code == 200
                and picture.content
                == s3.get_object(Bucket=bucket, Key=f"platform/{IMAGE_KEYS['latest_passenger']}")["Body"].read()
            )
            assert len(client.get("/titanic/recent").json()) == 2
    finally:
        instance_cm.__exit__(None, None, None)
