"""Immutable serving snapshots: how Dagster hands tables and files to the serving layer.

The serving process never opens the DuckDB file that Dagster writes (one writer per file). Instead an asset
publishes what serving needs as a new, never-modified folder `serving/<system>/<snapshot_id>/` in the object
store and then swaps the pointer `serving/<system>/CURRENT.json` in one atomic write. Readers see either the
old snapshot or the new one, never a mix.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from resources.object_store import ObjectNotFound, ObjectStore


def pointer_key(system: str) -> str:
    return f"serving/{system}/CURRENT.json"


def publish_snapshot(
    store: ObjectStore, system: str, files: dict[str, bytes], manifest: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write `files` into a fresh snapshot folder, then point CURRENT at it. Returns the pointer document."""
    published_at = datetime.now(UTC)
    snapshot_id = f"{published_at:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
    prefix = f"serving/{system}/{snapshot_id}"
    for name, data in files.items():
        store.put_bytes(f"{prefix}/{name}", data)
    pointer = {
        "system": system,
        "snapshot_id": snapshot_id,
        "prefix": prefix,
        "files": sorted(files),
        "published_at": published_at.isoformat(),
        "manifest": manifest or {},
    }
    store.put_bytes(pointer_key(system), json.dumps(pointer, default=str).encode(), "application/json")
    return pointer


def current_snapshot(store: ObjectStore, system: str) -> dict[str, Any] | None:
    """The pointer document of the system's current snapshot, or None before the first publication."""
    try:
        return json.loads(store.get_bytes(pointer_key(system)))
    except ObjectNotFound:
        return None


def read_snapshot_file(store: ObjectStore, pointer: dict[str, Any], name: str) -> bytes:
    return store.get_bytes(f"{pointer['prefix']}/{name}")
