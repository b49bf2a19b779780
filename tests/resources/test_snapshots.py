"""Serving snapshots as a reader sees them while a writer publishes: one whole snapshot or another, never a mix,
never a pointer to files that are not there, and never a change under a reader that holds an older pointer.

Readers here call `SnapshotWatcher.refresh` themselves: the serving poller logs and retries a failed refresh,
which would hide a torn publication.
"""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resources.object_store import LocalObjectStore
from resources.snapshots import current_snapshot, publish_snapshot, read_snapshot_file
from serving.watchers import SnapshotWatcher

SYSTEM = "demo"


def content(generation: int, name: str) -> bytes:
    return json.dumps({"generation": generation, "name": name}).encode()


def build(store, pointer) -> dict:
    """What a serving router builds: every file of the snapshot, decoded."""
    return {
        "generation": pointer["manifest"]["generation"],
        "files": {name: json.loads(read_snapshot_file(store, pointer, name)) for name in pointer["files"]},
    }


def assert_whole(state: dict, published: dict[int, list[str]]) -> None:
    """The state is exactly one published generation: its own file set, each file of that generation."""
    generation = state["generation"]
    assert sorted(state["files"]) == sorted(published[generation]), f"file set of generation {generation} differs"
    mixed = {name: body["generation"] for name, body in state["files"].items() if body["generation"] != generation}
    assert not mixed, f"pointer of generation {generation} served files of other generations: {mixed}"


class Interleaved:
    """The object store, with a reader's turn after every single write the writer makes."""

    def __init__(self, store: LocalObjectStore, after_write):
        self.store, self.after_write = store, after_write

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        uri = self.store.put_bytes(key, data, content_type)
        self.after_write()
        return uri

    def get_bytes(self, key: str) -> bytes:
        return self.store.get_bytes(key)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    publications=st.lists(
        st.sets(st.sampled_from(["a.json", "b.json", "c.json", "d.json"]), min_size=1), min_size=1, max_size=6
    )
)
def test_a_reader_between_any_two_writes_sees_one_whole_snapshot(tmp_path_factory, publications):
    store = LocalObjectStore(root=str(tmp_path_factory.mktemp("objects")))
    published: dict[int, list[str]] = {}
    serving = SnapshotWatcher(store, SYSTEM, build)  # a long-running server
    held: list[tuple[dict, dict]] = []  # pointers readers took earlier, with what they read then
    seen = [-1]

    def reader_turn() -> None:
        serving.refresh()
        fresh = SnapshotWatcher(store, SYSTEM, build)  # a server starting now
        fresh.refresh()
        for state in (serving.current, fresh.current):
            if state is not None:
                assert_whole(state, published)
        if fresh.current is not None:
            assert fresh.current["generation"] >= seen[0], "a reader went back to an older snapshot"
            seen[0] = fresh.current["generation"]
            held.append((current_snapshot(store, SYSTEM), fresh.current))
        for pointer, state in held:  # a snapshot is never rewritten under a reader that holds its pointer
            assert build(store, pointer) == state

    writer = Interleaved(store, reader_turn)
    for generation, names in enumerate(publications):
        published[generation] = sorted(names)
        publish_snapshot(
            writer, SYSTEM, {name: content(generation, name) for name in names}, manifest={"generation": generation}
        )
    assert serving.current["generation"] == len(publications) - 1


def test_a_reader_polling_while_a_writer_publishes_never_sees_a_mix(tmp_path):
    store = LocalObjectStore(root=str(tmp_path / "objects"))
    names = ["a.json", "b.json", "c.json"]
    generations = 150
    published = {generation: names for generation in range(generations)}
    publish_snapshot(store, SYSTEM, {name: content(0, name) for name in names}, manifest={"generation": 0})
    done = threading.Event()

    def write() -> None:
        try:
            for generation in range(1, generations):
                publish_snapshot(
                    store,
                    SYSTEM,
                    {name: content(generation, name) for name in names},
                    manifest={"generation": generation},
                )
        finally:
            done.set()

    def read() -> int:
        reads = 0
        while not done.is_set() or reads == 0:
            reader = SnapshotWatcher(store, SYSTEM, build)
            reader.refresh()
            assert_whole(reader.current, published)
            reads += 1
        return reads

    with ThreadPoolExecutor(3) as pool:
        readers = [pool.submit(read) for _ in range(2)]
        pool.submit(write).result()
        assert all(future.result() > 0 for future in readers)  # re-raises what a reader saw
    last = SnapshotWatcher(store, SYSTEM, build)
    last.refresh()
    assert last.current["generation"] == generations - 1


class Recording:
    """The object store, remembering each write's key and content type (S3 serves the pointer with it)."""

    def __init__(self, store: LocalObjectStore):
        self.store, self.writes = store, []

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        self.writes.append((key, content_type))
        return self.store.put_bytes(key, data, content_type)

    def get_bytes(self, key: str) -> bytes:
        return self.store.get_bytes(key)


def test_the_pointer_document_names_its_snapshot_time_and_files(tmp_path):
    store = Recording(LocalObjectStore(root=str(tmp_path)))
    assert current_snapshot(store, SYSTEM) is None  # before the first publication
    when = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    before = datetime.now(UTC)
    pointer = publish_snapshot(store, SYSTEM, {"b.json": b"2", "a.json": b"1"}, manifest={"as_of": when})
    assert re.fullmatch(r"\d{8}T\d{12}Z-[0-9a-f]{8}", pointer["snapshot_id"])
    published = datetime.fromisoformat(pointer["published_at"])
    assert published.utcoffset() == timedelta(0) and before <= published <= datetime.now(UTC)
    assert pointer["snapshot_id"].startswith(f"{published:%Y%m%dT%H%M%S%fZ}-")
    assert current_snapshot(store, SYSTEM) == {
        "system": SYSTEM,
        "snapshot_id": pointer["snapshot_id"],
        "prefix": f"serving/{SYSTEM}/{pointer['snapshot_id']}",
        "files": ["a.json", "b.json"],
        "published_at": pointer["published_at"],
        "manifest": {"as_of": str(when)},
    }
    assert pointer["manifest"] == {"as_of": when}
    assert store.writes[-1] == (f"serving/{SYSTEM}/CURRENT.json", "application/json")
    assert read_snapshot_file(store, pointer, "b.json") == b"2"
    again = publish_snapshot(store, SYSTEM, {"a.json": b"1"})
    assert again["snapshot_id"] != pointer["snapshot_id"] and again["manifest"] == {}
