import time

import dagster as dg
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mlops_assets.steam import answers, recommend
from mlops_assets.steam.products import serving_snapshot
from serving import steam
from serving.context import ServingContext
from tests.steam.test_recommend_answers import GAMES

ITEMS = pd.DataFrame(
    {"user_id": ["Alice", "Alice", "bob"], "item_id": ["1", "2", "3"], "playtime_forever": [600, 60, 1200]}
)
REVIEWS = pd.DataFrame(
    {
        "item_id": ["1", "1", "2", "4"],
        "recommend": [True, True, True, False],
        "sentiment": [2, 1, 2, 0],
        "year": pd.array([2015, 2015, 2014, 2015], dtype="Int64"),
    }
)


def publish(store, reviews=REVIEWS):
    serving_snapshot(
        dg.build_asset_context(),
        playtime_genre_answers=answers.playtime_genre(ITEMS, GAMES),
        user_for_genre_answers=answers.user_for_genre(ITEMS, GAMES),
        users_recommend_answers=answers.users_recommend(reviews, GAMES),
        users_not_recommend_answers=answers.users_not_recommend(reviews, GAMES),
        sentiment_answers=answers.sentiment_by_year(reviews),
        game_recommendations=recommend.item_item(GAMES),
        user_recommendations=recommend.user_item(ITEMS, GAMES),
        games=GAMES,
        object_store=store,
    )


@pytest.fixture
def client(settings):
    """The steam router alone on the serving context, its snapshot watcher polled by the test."""
    ctx = ServingContext.from_settings(settings, poll_seconds=0.1)
    app = FastAPI()
    app.include_router(steam.build_router(ctx))
    with TestClient(app) as api:
        assert api.get("/steam/sentiment_analysis/2015").status_code == 503  # nothing published yet
        publish(ctx.store)
        ctx.poller.refresh_all()
        yield api, ctx


def test_every_endpoint_answers_with_the_original_shapes(client):
    api, _ = client
    assert api.get("/steam/PlayTimeGenre/Action").json() == {
        "Año de lanzamiento con más horas jugadas para Género Action": 2012
    }
    body = api.get("/steam/UserForGenre/Action").json()
    assert body["Usuario con más horas jugadas para Género Action"] == "bob"
    assert body["Horas jugadas"] == [{"Año": 2012, "Horas": 20.0}]
    assert api.get("/steam/UsersRecommend/2015").json() == [{"Puesto 1": "Shooter A"}]
    assert api.get("/steam/UsersNotRecommend/2015").json() == [{"Puesto 1": "Puzzle B"}]
    assert api.get("/steam/sentiment_analysis/2015").json() == {"Negative": 1, "Neutral": 1, "Positive": 1}
    similar = api.get("/steam/game_recommendation/1").json()
    assert len(similar) == 5 and similar[0] == {"item_id": "3", "name": "Shooter B"}
    mine = api.get("/steam/user_recommendation/Alice").json()
    assert mine and not {"1", "2"} & {g["item_id"] for g in mine}
    assert api.get("/steam").status_code == 200


def test_text_is_case_insensitive(client):
    api, _ = client
    assert api.get("/steam/PlayTimeGenre/aCtIoN").status_code == 200
    assert api.get("/steam/UserForGenre/ACTION").status_code == 200
    assert api.get("/steam/user_recommendation/alice").json() == api.get("/steam/user_recommendation/Alice").json()


@pytest.mark.parametrize(
    "path, word",
    [
        ("/steam/PlayTimeGenre/Nope", "genre"),
        ("/steam/UserForGenre/x", "genre"),
        ("/steam/UsersRecommend/1999", "year"),
        ("/steam/sentiment_analysis/abc", "year"),
        ("/steam/game_recommendation/999", "item_id"),
        ("/steam/user_recommendation/nobody", "user_id"),
    ],
)
def test_unknown_keys_are_a_clear_404(client, path, word):
    api, _ = client
    response = api.get(path)
    assert response.status_code == 404 and word in response.json()["detail"]


def test_a_new_snapshot_is_swapped_in_without_a_restart(client):
    api, ctx = client
    publish(ctx.store, pd.concat([REVIEWS, REVIEWS.iloc[[0]]]))
    ctx.poller.start()  # the background thread of the real app
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            response = api.get("/steam/sentiment_analysis/2015")
            assert response.status_code == 200  # never a failed request during the swap
            if response.json()["Positive"] == 2:
                break
            time.sleep(0.05)
        assert api.get("/steam/sentiment_analysis/2015").json()["Positive"] == 2
    finally:
        ctx.poller.stop()
