"""Steam routes: the five query endpoints and the two recommenders, answered by lookup.

Every answer was computed by the `steam` asset group and published as a snapshot; this module loads the snapshot
into dicts of ready-made JSON bodies, so a request is one dict lookup. A new snapshot is swapped in whole by the
watcher thread: a request sees the old answers or the new ones, never a mix.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from mlops_assets.steam.constants import (
    GAME_NAMES_FILE,
    GAME_RECOMMENDATIONS_FILE,
    PLAYTIME_GENRE_FILE,
    SENTIMENT_FILE,
    SNAPSHOT_FORMAT,
    SYSTEM,
    USER_FOR_GENRE_FILE,
    USER_IDS_LOWER_FILE,
    USER_RECOMMENDATIONS_FILE,
    USERS_NOT_RECOMMEND_FILE,
    USERS_RECOMMEND_FILE,
)
from resources.snapshots import read_snapshot_file

TITLE = "Steam games"
HOME = "/steam"


@dataclass(frozen=True)
class SteamAnswers:
    """Pre-encoded response bodies keyed by lower-cased genre, year, item id or user id."""

    snapshot_id: str
    playtime_genre: dict[str, bytes]
    user_for_genre: dict[str, bytes]
    users_recommend: dict[str, bytes]
    users_not_recommend: dict[str, bytes]
    sentiment: dict[str, bytes]
    game_recommendation: dict[str, bytes]
    user_recommendation: dict[str, bytes]
    user_ids_lower: dict[str, str]
    genres: list[str]
    years: list[int]
    dagster_run_id: str | None = None  # the run that published the snapshot, for the inference log's receipt


def _ranked(rows: list[dict]) -> bytes:
    return orjson.dumps([{f"Puesto {row['rank']}": row["name"]} for row in rows])


class SnapshotFormatError(ValueError):
    """A published snapshot this reader does not understand: the watcher keeps serving the previous one."""


def build_answers(store, pointer: dict) -> SteamAnswers:
    found = pointer.get("manifest", {}).get("format")
    if found != SNAPSHOT_FORMAT:
        raise SnapshotFormatError(
            f"steam snapshot {pointer.get('snapshot_id')} has format {found!r}; "
            f"this server reads format {SNAPSHOT_FORMAT}"
        )
    load = lambda name: orjson.loads(read_snapshot_file(store, pointer, name))
    names = load(GAME_NAMES_FILE)
    playtime, for_genre = load(PLAYTIME_GENRE_FILE), load(USER_FOR_GENRE_FILE)
    recommend, not_recommend = load(USERS_RECOMMEND_FILE), load(USERS_NOT_RECOMMEND_FILE)
    sentiment = load(SENTIMENT_FILE)
    games = lambda ids: orjson.dumps([{"item_id": i, "name": names.get(i, f"item {i}")} for i in ids])
    return SteamAnswers(
        snapshot_id=pointer["snapshot_id"],
        playtime_genre={
            g.lower(): orjson.dumps({f"Año de lanzamiento con más horas jugadas para Género {g}": y})
            for g, y in playtime.items()
        },
        user_for_genre={
            g.lower(): orjson.dumps(
                {
                    f"Usuario con más horas jugadas para Género {g}": v["user_id"],
                    "Horas jugadas": [{"Año": row["year"], "Horas": row["hours"]} for row in v["years"]],
                }
            )
            for g, v in for_genre.items()
        },
        users_recommend={y: _ranked(rows) for y, rows in recommend.items()},
        users_not_recommend={y: _ranked(rows) for y, rows in not_recommend.items()},
        sentiment={y: orjson.dumps(counts) for y, counts in sentiment.items()},
        game_recommendation={i: games(ids) for i, ids in load(GAME_RECOMMENDATIONS_FILE).items()},
        user_recommendation={u: games(ids) for u, ids in load(USER_RECOMMENDATIONS_FILE).items()},
        user_ids_lower=load(USER_IDS_LOWER_FILE),
        genres=sorted(playtime),
        years=sorted(int(y) for y in sentiment),
        dagster_run_id=(pointer.get("manifest") or {}).get("dagster_run_id"),
    )


ERRORS = {
    "description": "Error",
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
        }
    },
}
# What every lookup route may answer besides 200: an unknown key, or answers not published yet.
NOT_FOUND = {
    404: {**ERRORS, "description": "Unknown genre, year, game or user (the detail lists what is known)"},
    503: {**ERRORS, "description": "The steam answers are not published yet"},
}


def build_router(ctx) -> APIRouter:
    watcher = ctx.watch_snapshot(SYSTEM, build_answers)
    router = APIRouter(prefix="/steam", tags=["steam"])

    def answers() -> SteamAnswers:
        current = watcher.current
        if current is None:
            raise HTTPException(503, "the steam answers are not published yet: materialize the `steam` asset group")
        return current

    def logged(state: SteamAnswers, route: str, inputs: dict, body: bytes) -> Response:
        # The original's answers are kept as they are (some are JSON lists): the log's id goes in a header.
        prediction_id = ctx.inference_log.record(
            SYSTEM,
            f"/steam/{route}",
            inputs,
            body,
            SYSTEM,
            state.snapshot_id,
            {"snapshot_id": state.snapshot_id, "dagster_run_id": state.dagster_run_id},
        )
        return Response(content=body, media_type="application/json", headers={"X-Prediction-Id": prediction_id})

    def by_genre(table: str, genre: str, route: str) -> Response:
        state = answers()
        body = getattr(state, table).get(genre.strip().lower())
        if body is None:
            raise HTTPException(404, f"genre {genre!r} is unknown; known genres: {', '.join(state.genres)}")
        return logged(state, route, {"genre": genre}, body)

    def by_year(table: str, year: str, route: str) -> Response:
        state = answers()
        body = getattr(state, table).get(year.strip())
        if body is None:
            raise HTTPException(
                404, f"year {year!r} has no reviews; years with reviews: {', '.join(map(str, state.years))}"
            )
        return logged(state, route, {"year": year}, body)

    @router.get(
        "/PlayTimeGenre/{genre}", summary="Release year with the most hours played for a genre", responses=NOT_FOUND
    )
    def play_time_genre(genre: str):
        return by_genre("playtime_genre", genre, "PlayTimeGenre/{genre}")

    @router.get(
        "/UserForGenre/{genre}", summary="User with the most hours in a genre, with hours per year", responses=NOT_FOUND
    )
    def user_for_genre(genre: str):
        return by_genre("user_for_genre", genre, "UserForGenre/{genre}")

    @router.get("/UsersRecommend/{year}", summary="Top 3 most recommended games of a review year", responses=NOT_FOUND)
    def users_recommend(year: str):
        return by_year("users_recommend", year, "UsersRecommend/{year}")

    @router.get(
        "/UsersNotRecommend/{year}", summary="Top 3 least recommended games of a review year", responses=NOT_FOUND
    )
    def users_not_recommend(year: str):
        return by_year("users_not_recommend", year, "UsersNotRecommend/{year}")

    @router.get(
        "/sentiment_analysis/{year}",
        summary="Negative / neutral / positive review counts of a year",
        responses=NOT_FOUND,
    )
    def sentiment_analysis(year: str):
        return by_year("sentiment", year, "sentiment_analysis/{year}")

    @router.get(
        "/game_recommendation/{item_id}",
        summary="5 games most similar to a game (tags and genres)",
        responses=NOT_FOUND,
    )
    def game_recommendation(item_id: str):
        state = answers()
        body = state.game_recommendation.get(item_id.strip())
        if body is None:
            raise HTTPException(404, f"item_id {item_id!r} is not a game of the catalogue")
        return logged(state, "game_recommendation/{item_id}", {"item_id": item_id}, body)

    @router.get(
        "/user_recommendation/{user_id}", summary="5 games a user has not got and would like", responses=NOT_FOUND
    )
    def user_recommendation(user_id: str):
        state = answers()
        key = user_id.strip()
        body = state.user_recommendation.get(key) or state.user_recommendation.get(
            state.user_ids_lower.get(key.lower(), "")
        )
        if body is None:
            raise HTTPException(404, f"user_id {user_id!r} is unknown or has played no game")
        return logged(state, "user_recommendation/{user_id}", {"user_id": user_id}, body)

    @router.get("", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request):
        state = watcher.current
        return ctx.templates.TemplateResponse(
            request,
            "steam_home.html",
            {
                "ready": state is not None,
                "snapshot_id": getattr(state, "snapshot_id", None),
                "genres": getattr(state, "genres", []),
                "years": getattr(state, "years", []),
            },
        )

    return router
