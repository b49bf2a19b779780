"""The steam serving snapshot as a contract: the asset publishes exactly the contract's files in its format, and
the router refuses a snapshot of another format (keeping what it served) instead of misreading it."""

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mlops_assets.steam.constants import SNAPSHOT_FILES, SNAPSHOT_FORMAT, SYSTEM
from resources.snapshots import current_snapshot, pointer_key
from serving import steam
from serving.context import ServingContext
from tests.steam.test_serving import publish


@pytest.fixture
def served(settings):
    ctx = ServingContext.from_settings(settings, poll_seconds=0.1)
    app = FastAPI()
    app.include_router(steam.build_router(ctx))
    with TestClient(app) as api:
        yield api, ctx


def test_the_asset_publishes_the_contracts_files_in_its_format(served):
    _, ctx = served
    publish(ctx.store)
    pointer = current_snapshot(ctx.store, SYSTEM)
    assert sorted(pointer["files"]) == sorted(SNAPSHOT_FILES) and len(SNAPSHOT_FILES) == 9
    assert pointer["manifest"]["format"] == SNAPSHOT_FORMAT


def test_a_snapshot_of_another_format_is_refused_and_the_served_one_kept(served):
    api, ctx = served
    publish(ctx.store)
    ctx.poller.refresh_all()
    served_id = ctx.poller.watchers[0].snapshot_id
    assert api.get("/steam/sentiment_analysis/2015").status_code == 200

    publish(ctx.store)  # a newer snapshot, whose pointer then claims a format this server does not read
    pointer = current_snapshot(ctx.store, SYSTEM)
    pointer["manifest"]["format"] = SNAPSHOT_FORMAT + 1
    ctx.store.put_bytes(pointer_key(SYSTEM), json.dumps(pointer).encode(), "application/json")
    with pytest.raises(steam.SnapshotFormatError, match=f"format {SNAPSHOT_FORMAT + 1}"):
        steam.build_answers(ctx.store, pointer)
    ctx.poller.refresh_all()
    assert ctx.poller.watchers[0].snapshot_id == served_id
    assert api.get("/steam/sentiment_analysis/2015").status_code == 200
