"""Steam's seven answers are logged (id in a header, bodies as the original's) and their receipt follows the
Dagster run that published the snapshot; a failing object store fails no answer."""

from __future__ import annotations

import dagster as dg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mlops_assets.steam import answers, recommend
from mlops_assets.steam.products import serving_snapshot
from resources.object_store import LocalObjectStore
from resources.settings import PlatformSettings
from serving import predictions, steam
from serving.context import ServingContext
from serving.inference_log import new_prediction_id
from tests.steam.test_recommend_answers import GAMES
from tests.steam.test_serving import ITEMS, REVIEWS
from tests.support import wait_for

INPUTS = {
    "playtime_genre_answers": answers.playtime_genre(ITEMS, GAMES),
    "user_for_genre_answers": answers.user_for_genre(ITEMS, GAMES),
    "users_recommend_answers": answers.users_recommend(REVIEWS, GAMES),
    "users_not_recommend_answers": answers.users_not_recommend(REVIEWS, GAMES),
    "sentiment_answers": answers.sentiment_by_year(REVIEWS),
    "game_recommendations": recommend.item_item(GAMES),
    "user_recommendations": recommend.user_item(ITEMS, GAMES),
    "games": GAMES,
}
ENDPOINTS = {
    "/steam/PlayTimeGenre/Action": ("/steam/PlayTimeGenre/{genre}", {"genre": "Action"}),
    "/steam/UserForGenre/action": ("/steam/UserForGenre/{genre}", {"genre": "action"}),
    "/steam/UsersRecommend/2015": ("/steam/UsersRecommend/{year}", {"year": "2015"}),
    "/steam/UsersNotRecommend/2015": ("/steam/UsersNotRecommend/{year}", {"year": "2015"}),
    "/steam/sentiment_analysis/2015": ("/steam/sentiment_analysis/{year}", {"year": "2015"}),
    "/steam/game_recommendation/1": ("/steam/game_recommendation/{item_id}", {"item_id": "1"}),
    "/steam/user_recommendation/Alice": ("/steam/user_recommendation/{user_id}", {"user_id": "Alice"}),
}


class Tables(dg.ConfigurableIOManager):
    """Hands the tiny answer tables to the snapshot asset as if the warehouse held them."""

    def handle_output(self, context, obj) -> None:
        raise AssertionError("the upstream tables are given, not produced")

    def load_input(self, context):
        return INPUTS[context.asset_key.path[-1]]


@pytest.fixture(scope="module")
def steam_api(tmp_path_factory):
    home = tmp_path_factory.mktemp("steam_log")
    settings = PlatformSettings.from_env({"MLOPS_HOME": str(home / "mlops"), "MLOPS_OFFLINE": "1"})
    (home / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance, pytest.MonkeyPatch.context() as patch:
        # A real run publishes the snapshot, so the receipt has a run, a data version and a code version to show.
        store = LocalObjectStore(root=str(settings.objects_dir))
        # Unprefixed: the code location resolves these names to steam/<name>; here they resolve to the sources.
        sources = [dg.SourceAsset(dg.AssetKey([name])) for name in INPUTS]
        run = dg.materialize(
            [serving_snapshot, *sources], instance=instance, resources={"object_store": store, "io_manager": Tables()}
        )
        patch.setenv("DAGSTER_HOME", instance.root_directory)
        # The steam router and the receipt route as serving.app composes them (the whole app would start MLflow).
        ctx = ServingContext.from_settings(settings, poll_seconds=0.1)
        ctx.inference_log.flush_seconds = 0.05
        app = FastAPI()
        app.include_router(steam.build_router(ctx))
        app.include_router(predictions.build_router(ctx, ["steam"]))
        ctx.poller.start()
        ctx.inference_log.start()
        try:
            client = TestClient(app)
            wait_for(lambda: client.get("/steam/sentiment_analysis/2015").status_code == 200, "the steam snapshot")
            yield client, ctx, run.run_id
        finally:
            ctx.poller.stop()
            ctx.inference_log.stop()


def test_every_endpoint_is_logged_with_an_id_header_and_the_original_body(steam_api):
    client, ctx, _run_id = steam_api
    ids = {}
    for path, (route, inputs) in ENDPOINTS.items():
        response = client.get(path)
        assert response.status_code == 200, path
        ids[path] = response.headers["x-prediction-id"]
        receipt = client.get(f"/predictions/{ids[path]}")
        assert receipt.status_code == 200, receipt.text
        logged = receipt.json()["prediction"]
        assert (logged["system"], logged["route"], logged["inputs"]) == ("steam", route, inputs)
        assert logged["output"] == response.json()  # the answer as sent, lists included
        assert logged["model_version"] == ctx.poller.watchers[0].snapshot_id
    assert len(set(ids.values())) == 7
    assert client.get("/steam/PlayTimeGenre/Nope").status_code == 404
    assert ctx.inference_log.find(new_prediction_id()[0], ["steam"]) is None


def test_the_receipt_follows_the_run_that_published_the_snapshot(steam_api):
    client, ctx, run_id = steam_api
    prediction_id = client.get("/steam/UsersRecommend/2015").headers["x-prediction-id"]
    # Read back from the file, as another process would: the writer thread flushes every 0.05 s here.
    wait_for(lambda: ctx.inference_log.rows_written and ctx.inference_log.written_file(prediction_id), "the flush")
    receipt = client.get(f"/predictions/{prediction_id}").json()["receipt"]
    assert receipt["dagster_run"]["run_id"] == run_id and receipt["dagster_run"]["status"] == "SUCCESS"
    made = receipt["model_materialization"]
    assert made["asset_key"] == "steam/serving_snapshot" and made["code_version"] == "1" and made["data_version"]
    assert receipt["code_version"] == "1"
    assert {i["asset_key"] for i in receipt["training_data"]} == set(INPUTS)
    assert receipt["model"]["snapshot_id"] == ctx.poller.watchers[0].snapshot_id
    assert receipt["mlflow_run"] is None and any("mlflow_run" in reason for reason in receipt["missing"])


def test_unknown_ids_are_404_naming_them_and_malformed_ids_422(steam_api):
    client, _, _ = steam_api
    unknown = new_prediction_id()[0]
    response = client.get(f"/predictions/{unknown}")
    assert response.status_code == 404 and unknown in response.json()["detail"]
    response = client.get("/predictions/not-an-id")
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["path", "prediction_id"]


def test_a_failing_object_store_fails_no_answer(steam_api, tmp_path):
    client, ctx, _ = steam_api
    log = ctx.inference_log
    working, blocked = log.store, tmp_path / "blocked"
    blocked.write_bytes(b"a file where the store's folder should be")
    failures = log.failed_writes
    log.store = LocalObjectStore(root=str(blocked))
    try:
        responses = [client.get("/steam/sentiment_analysis/2015") for _ in range(20)]
        assert all(r.status_code == 200 and r.json() == {"Negative": 1, "Neutral": 1, "Positive": 1} for r in responses)
        wait_for(lambda: log.failed_writes > failures, "a failed write")
        held = responses[-1].headers["x-prediction-id"]
        assert client.get(f"/predictions/{held}").status_code == 200  # still served from memory
    finally:
        log.store = working
    wait_for(lambda: log.written_file(held), "the rows written once the store works again")
