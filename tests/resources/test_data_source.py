import hashlib
import http.server
import threading
from functools import partial

import pytest

from resources.data_source import DatasetFile, DatasetUnavailable, DataSource


@pytest.fixture
def http_folder(tmp_path):
    """A local HTTP server (127.0.0.1) publishing a folder, standing in for the dataset's public host."""
    folder = tmp_path / "public"
    folder.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_local_copy_wins_and_is_described(tmp_path):
    (tmp_path / "copy" / "titanic").mkdir(parents=True)
    (tmp_path / "copy" / "titanic" / "train.csv").write_text("a,b\n1,2\n")
    source = DataSource(local_dir=str(tmp_path / "copy"), cache_dir=str(tmp_path / "cache"), offline=True)
    fetched = source.fetch(DatasetFile("titanic/train.csv", url="http://127.0.0.1:9/never"))
    assert fetched.origin == "local copy" and fetched.size == 8
    assert fetched.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert fetched.metadata()["source_sha256"].value == fetched.sha256


def test_download_is_verified_cached_and_reused(tmp_path, http_folder):
    folder, base = http_folder
    (folder / "data.csv").write_bytes(b"x\n1\n")
    spec = DatasetFile("set/data.csv", url=f"{base}/data.csv", sha256=hashlib.sha256(b"x\n1\n").hexdigest())
    source = DataSource(cache_dir=str(tmp_path / "cache"))
    first = source.fetch(spec)
    assert first.origin == "download" and first.path.read_bytes() == b"x\n1\n"
    (folder / "data.csv").unlink()  # the public copy disappears: the cache still serves
    assert source.fetch(spec).origin == "cache"


def test_checksum_mismatch_keeps_nothing(tmp_path, http_folder):
    folder, base = http_folder
    (folder / "data.csv").write_bytes(b"tampered")
    spec = DatasetFile("set/data.csv", url=f"{base}/data.csv", sha256="0" * 64)
    with pytest.raises(DatasetUnavailable, match="checksum mismatch"):
        DataSource(cache_dir=str(tmp_path / "cache")).fetch(spec)
    assert not list((tmp_path / "cache").rglob("*.csv"))


def test_offline_without_copy_names_the_setting(tmp_path):
    source = DataSource(cache_dir=str(tmp_path / "cache"), offline=True)
    with pytest.raises(DatasetUnavailable, match="MLOPS_DATA_DIR"):
        source.fetch(DatasetFile("titanic/train.csv", url="https://example.invalid/train.csv"))


def test_unreachable_download_names_the_setting(tmp_path):
    source = DataSource(cache_dir=str(tmp_path / "cache"), timeout_seconds=2)
    with pytest.raises(DatasetUnavailable, match="MLOPS_DATA_DIR"):
        source.fetch(DatasetFile("t.csv", url="http://127.0.0.1:9/t.csv"))
