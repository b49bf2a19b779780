import time
from datetime import UTC, datetime

import pytest

from resources import build_object_store
from resources.object_store import LocalObjectStore, ObjectNotFound, S3ObjectStore
from resources.settings import PlatformSettings


def exercise(store):
    """The contract every implementation honours."""
    uri = store.put_bytes("a/one.png", b"first", "image/png")
    assert "a/one.png" in uri
    assert store.get_bytes("a/one.png") == b"first"
    assert store.exists("a/one.png") and not store.exists("a/missing.png")
    with pytest.raises(ObjectNotFound, match="a/missing.png"):
        store.get_bytes("a/missing.png")
    first = store.list_objects("a")
    assert [o.key for o in first] == ["a/one.png"] and first[0].size == 5

    time.sleep(1.1)  # S3 timestamps have one-second resolution
    store.put_bytes("a/two.png", b"second")
    store.put_bytes("b/other.txt", b"x")
    newer = store.list_objects("a", since_last_modified=first[0].last_modified)
    assert [o.key for o in newer] == ["a/two.png"]

    # Same bytes under the same key keep one identity; new bytes get a new one.
    etag = store.list_objects("a/one.png")[0].etag
    store.put_bytes("a/one.png", b"first")
    assert store.list_objects("a/one.png")[0].etag == etag
    store.put_bytes("a/one.png", b"changed")
    assert store.list_objects("a/one.png")[0].etag != etag

    store.delete("a/one.png")
    assert not store.exists("a/one.png")
    with pytest.raises(ValueError):
        store.put_bytes("../escape", b"no")


def test_local_store(tmp_path):
    store = LocalObjectStore(root=str(tmp_path / "objects"))
    exercise(store)
    assert not list((tmp_path / "objects").rglob(".tmp-*"))  # atomic writes leave no temp files


@pytest.mark.s3
def test_s3_store_on_moto_server(s3_env):
    store = build_object_store(PlatformSettings.from_env())
    assert isinstance(store, S3ObjectStore)
    exercise(store)
    assert store.uri("k").startswith(f"s3://{s3_env['MLOPS_S3_BUCKET']}/")


@pytest.mark.s3
def test_s3_store_with_prefix_lists_relative_keys(s3_env, monkeypatch):
    monkeypatch.setenv("MLOPS_S3_PREFIX", "team/prod")
    store = build_object_store(PlatformSettings.from_env())
    store.put_bytes("incoming/x.png", b"1")
    assert [o.key for o in store.list_objects("incoming")] == ["incoming/x.png"]
    assert store.uri("incoming/x.png").endswith("/team/prod/incoming/x.png")
    assert store.list_objects("incoming", since_last_modified=datetime.now(UTC)) == []
