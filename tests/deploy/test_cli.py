"""The `mlops` CLI on the local bucket store and on S3 (moto_server): commands, pins and one-line errors."""

from __future__ import annotations

from typer.testing import CliRunner

from mlops_assets.deploy.models import read_pin
from mlops_assets.deploy.records import save_record
from resources import build_object_store
from resources.model_bucket import sha256_bytes
from serving.cli import app
from tests.deploy.helpers import demo_record

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def assert_clean_error(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert fragment in result.output


def test_bucket_lifecycle_upload_list_and_pin(stores, bucket_env, tmp_path, paris_skops):
    store, models = stores
    bucket = bucket_env["MLOPS_MODEL_BUCKET"]
    model = tmp_path / "paris_airbnb_price.skops"
    model.write_bytes(paris_skops)

    assert run("create-bucket", bucket).exit_code == 0
    first = run("upload", bucket, str(model), "--tag", "1.0")
    assert first.exit_code == 0, first.output
    model.write_bytes(paris_skops + b"")  # same bytes, second version: S3 keeps both
    second = run("upload", bucket, str(model), "--tag", "2.0")
    assert second.exit_code == 0, second.output

    versions = models.list_versions(bucket)
    assert [v.tag for v in versions] == ["2.0", "1.0"]
    assert [v.is_latest for v in versions] == [True, False]
    assert all(v.key == "paris_airbnb_price.skops" and v.sha256 == sha256_bytes(paris_skops) for v in versions)

    listing = run("list-objects", bucket)
    assert listing.exit_code == 0
    lines = listing.output.strip().splitlines()
    assert lines[0].split("\t") == ["key", "version_id", "is_latest", "last_modified", "tags"]
    assert versions[1].version_id in listing.output and "Version=1.0" in listing.output

    old = versions[1].version_id
    save_record(store, demo_record("paris_airbnb_price"))
    pinned = run("update-lambda", "paris_airbnb_price", old)  # the original's name still works
    assert pinned.exit_code == 0, pinned.output
    pin = read_pin(store, "paris_airbnb_price")
    assert (pin.version_id, pin.tag, pin.sha256) == (old, "1.0", sha256_bytes(paris_skops))

    assert_clean_error(run("delete-bucket", bucket), "--force")
    deleted = run("delete-bucket", bucket, "--force")
    assert deleted.exit_code == 0 and "2 object version" in deleted.output
    assert not models.bucket_exists(bucket)


def test_missing_bucket_file_and_version_are_one_line_errors(stores, bucket_env, tmp_path, paris_skops):
    bucket = bucket_env["MLOPS_MODEL_BUCKET"]
    model = tmp_path / "m.skops"
    model.write_bytes(paris_skops)
    assert_clean_error(run("list-objects", "no-such-bucket"), "bucket 'no-such-bucket' does not exist")
    assert_clean_error(run("upload", "no-such-bucket", str(model), "--tag", "1"), "does not exist")
    assert run("create-bucket", bucket).exit_code == 0
    assert_clean_error(run("upload", bucket, str(tmp_path / "absent.skops"), "--tag", "1"), "not found")
    save_record(stores[0], demo_record("paris_airbnb_price"))
    assert_clean_error(run("pin", "paris_airbnb_price", "no-such-version"), "version 'no-such-version' not found")
    assert_clean_error(run("pin", "no_such_deployment", "v"), "deployment 'no_such_deployment' not found")
    assert_clean_error(run("upload", bucket, str(model), "--tag", "bad\ttag"), "invalid tag")
    assert_clean_error(run("create-bucket", "Bad_Name"), "invalid bucket name")


def test_pins_lists_every_deployment(platform_env, settings):
    store = build_object_store(settings)
    for name in ("paris_airbnb_price", "titanic_survival"):
        save_record(store, demo_record(name))
    result = run("pins")
    assert result.exit_code == 0
    assert "paris_airbnb_price\t(not pinned)" in result.output and "titanic_survival" in result.output


def test_an_unreachable_registry_is_one_line_error(platform_env, monkeypatch):
    """The registry no longer reads an outage as "no such alias": the CLI says which service failed, no traceback."""
    from tests.support import free_port

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    assert_clean_error(run("deploy", "pistachio", "models:/Pistachio_Classifier@champion"), "MLflow registry")
