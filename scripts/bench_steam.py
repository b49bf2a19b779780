"""Benchmark of the Steam system at full scale: ingest, group materialization, endpoint latency over HTTP.

    .venv/bin/python scripts/bench_steam.py --data-dir ../shared/data [--scale 1.0] [--requests 300]

Prints, in one run: raw ingest time of our parser against an `ast.literal_eval` loop (the same unnest code, only
the line parser swapped), the materialization time of the `steam` group (generated users' items at `--scale`),
and p50/p99 per endpoint over HTTP for our API and for the original approach (pandas reading parquet on every
request), each served by a real uvicorn on 127.0.0.1, with the ratio.
"""

from __future__ import annotations

import ast
import gzip
import http.client
import itertools
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import typer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import percentile, standalone_environment, uvicorn_server, wait_until_loaded  # noqa: E402

app = typer.Typer(add_completion=False)


# ---- the original approach: parquet read and pandas computation on every request --------------------------
def create_original_app():
    import numpy as np
    import pandas as pd
    from fastapi import FastAPI, HTTPException

    folder = Path(os.environ["STEAM_ORIGINAL_PARQUET"])
    original = FastAPI()

    @original.get("/PlayTimeGenre/{genre}")
    def play_time_genre(genre: str):
        df = pd.read_parquet(folder / "items_genres.parquet", columns=["genre", "release_year", "playtime_forever"])
        df = df[df["genre"].str.lower() == genre.lower()]
        if df.empty:
            raise HTTPException(404, "unknown genre")
        return {
            f"Año de lanzamiento con más horas jugadas para Género {genre}": int(
                df.groupby("release_year")["playtime_forever"].sum().idxmax()
            )
        }

    @original.get("/UserForGenre/{genre}")
    def user_for_genre(genre: str):
        df = pd.read_parquet(folder / "items_genres.parquet")
        df = df[df["genre"].str.lower() == genre.lower()]
        if df.empty:
            raise HTTPException(404, "unknown genre")
        user = df.groupby("user_id")["playtime_forever"].sum().idxmax()
        years = df[df["user_id"] == user].groupby("release_year")["playtime_forever"].sum()
        return {
            f"Usuario con más horas jugadas para Género {genre}": user,
            "Horas jugadas": [{"Año": int(y), "Horas": round(h / 60, 1)} for y, h in years.items()],
        }

    def top3(year: int, recommend: bool, sentiments: list[int]):
        df = pd.read_parquet(folder / "reviews.parquet")
        df = df[(df["year"] == year) & (df["recommend"] == recommend) & df["sentiment"].isin(sentiments)]
        names = pd.read_parquet(folder / "games.parquet", columns=["item_id", "name"]).set_index("item_id")["name"]
        top = df["item_id"].value_counts().head(3)
        return [{f"Puesto {i + 1}": names.get(item, item)} for i, item in enumerate(top.index)]

    @original.get("/UsersRecommend/{year}")
    def users_recommend(year: int):
        return top3(year, True, [1, 2])

    @original.get("/UsersNotRecommend/{year}")
    def users_not_recommend(year: int):
        return top3(year, False, [0])

    @original.get("/sentiment_analysis/{year}")
    def sentiment_analysis(year: int):
        df = pd.read_parquet(folder / "reviews.parquet", columns=["year", "sentiment"])
        counts = df[df["year"] == year]["sentiment"].value_counts()
        return {"Negative": int(counts.get(0, 0)), "Neutral": int(counts.get(1, 0)), "Positive": int(counts.get(2, 0))}

    def vectors():
        from sklearn.preprocessing import MultiLabelBinarizer, normalize

        games = pd.read_parquet(folder / "games.parquet")
        matrix = MultiLabelBinarizer(sparse_output=True).fit_transform([list(v) for v in games["tags_genres"]])
        return games, normalize(matrix.astype(np.float32).tocsr())

    @original.get("/game_recommendation/{item_id}")
    def game_recommendation(item_id: str):
        games, matrix = vectors()
        hit = np.flatnonzero(games["item_id"].to_numpy() == item_id)
        if not len(hit):
            raise HTTPException(404, "unknown item")
        scores = (matrix @ matrix[hit[0]].T).toarray().ravel()
        scores[hit[0]] = -1
        best = np.argsort(-scores, kind="stable")[:5]
        return [{"item_id": games["item_id"].iloc[i], "name": games["name"].iloc[i]} for i in best]

    @original.get("/user_recommendation/{user_id}")
    def user_recommendation(user_id: str):
        items = pd.read_parquet(folder / "user_items.parquet")
        mine = items[items["user_id"] == user_id]
        if mine.empty:
            raise HTTPException(404, "unknown user")
        games, matrix = vectors()
        index = pd.Index(games["item_id"])
        rows = index.get_indexer(mine["item_id"])
        keep = rows >= 0
        profile = np.log1p(mine["playtime_forever"].to_numpy(float))[keep] @ matrix[rows[keep]].toarray()
        scores = matrix @ profile
        popular = index.get_indexer(items["item_id"].value_counts().index[:3000])
        candidate = np.full(len(scores), -np.inf)
        candidate[popular[popular >= 0]] = scores[popular[popular >= 0]]
        candidate[rows[keep]] = -np.inf
        best = np.argsort(-candidate, kind="stable")[:5]
        return [{"item_id": games["item_id"].iloc[i], "name": games["name"].iloc[i]} for i in best]

    return original


# ---- measurements -------------------------------------------------------------------------------------------
def _ast_user_items(path: Path):
    """The baseline: an `ast.literal_eval` loop and a plain Python unnest into the same columns."""
    import pandas as pd

    columns = {
        name: [] for name in ["user_id", "items_count", "item_id", "item_name", "playtime_forever", "playtime_2weeks"]
    }
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            record = ast.literal_eval(line)
            for item in record["items"]:
                columns["user_id"].append(record["user_id"])
                columns["items_count"].append(record["items_count"])
                for name in ("item_id", "item_name", "playtime_forever", "playtime_2weeks"):
                    columns[name].append(item[name])
    return pd.DataFrame(columns)


def _ingest(data_dir: Path, items_file: Path, sample_lines: int) -> None:
    from mlops_assets.steam import ingest, literal_parser

    def timed(fn, *args):
        start = time.perf_counter()
        fn(*args)
        return time.perf_counter() - start

    def with_ast(fn, path):
        fast = literal_parser.parse_literal
        literal_parser.parse_literal = ast.literal_eval
        try:
            return timed(fn, path)
        finally:
            literal_parser.parse_literal = fast

    reviews = data_dir / "steam" / "australian_user_reviews.json.gz"
    ours, baseline = timed(ingest.read_reviews, reviews), with_ast(ingest.read_reviews, reviews)
    print(
        f"ingest reviews (25,799 lines, 59,305 rows): ours {ours:.2f} s, ast loop {baseline:.2f} s, "
        f"x{baseline / ours:.1f}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        sample = Path(scratch) / "sample.json.gz"
        with gzip.open(items_file, "rt") as src, gzip.open(sample, "wt", compresslevel=1) as dst:
            dst.writelines(itertools.islice(src, sample_lines))
        ours, baseline = timed(ingest.read_user_items, sample), timed(_ast_user_items, sample)
    print(
        f"ingest users_items sample ({sample_lines:,} lines): ours {ours:.2f} s, ast loop {baseline:.2f} s, "
        f"x{baseline / ours:.1f}"
    )
    start = time.perf_counter()
    frame, report = ingest.read_user_items(items_file)
    full = time.perf_counter() - start
    print(
        f"ingest users_items whole file ({report.lines:,} lines, {len(frame):,} rows): ours {full:.1f} s "
        f"(ast loop estimated {full * baseline / ours:.0f} s from the sample ratio)"
    )


def _percentiles(base: str, paths: list[str], requests: int, warmup: int = 0) -> tuple[float, float]:
    """Sequential GETs over one keep-alive connection (what a client library does); p50 and p99 in ms."""
    parsed = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    timings = []
    try:
        for index, path in enumerate(itertools.islice(itertools.cycle(paths), warmup + requests)):
            start = time.perf_counter()
            connection.request("GET", parsed.path + path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{base + path} answered {response.status}")
            if index >= warmup:
                timings.append((time.perf_counter() - start) * 1000)
    finally:
        connection.close()
    timings.sort()
    return statistics.median(timings), percentile(timings, 99)


def _materialize(defs, automation, bootstrap, scale: float) -> None:
    import dagster as dg

    start = time.perf_counter()
    result = defs.resolve_job_def(automation.STEAM_JOB).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), run_config=bootstrap.bootstrap_run_config(scale)
    )
    print(f"materialization of the steam group (generator scale {scale}): {time.perf_counter() - start:.1f} s")
    for event in result.all_events:
        if event.event_type_value == "STEP_SUCCESS":
            print(f"  {event.step_key}: {event.event_specific_data.duration_ms / 1000:.1f} s")


@app.command()
def main(
    data_dir: Path = typer.Option(REPO.parent / "shared" / "data"),
    scale: float = 1.0,
    requests: int = 300,
    original_requests: int = 5,
    sample_lines: int = 3000,
    materialize: bool = typer.Option(True, help="--no-materialize reuses the state already in --home"),
    home: Path = typer.Option(None, help="platform state folder (default: a temporary one)"),
) -> None:
    import dagster as dg
    import duckdb

    home = home or Path(tempfile.mkdtemp(prefix="steam-bench-"))
    env = standalone_environment(home, data_dir.resolve())
    os.environ.update(env)
    from mlops_assets import steam
    from mlops_assets.steam import automation, bootstrap
    from resources import build_resources
    from resources.settings import PlatformSettings

    defs = dg.Definitions.merge(
        steam.defs,
        dg.Definitions(resources=build_resources(PlatformSettings.from_env()), executor=dg.in_process_executor),
    )
    if materialize:
        _materialize(defs, automation, bootstrap, scale)
    objects = home / "objects"

    _ingest(data_dir, objects / "steam" / "generated" / "users_items.json.gz", sample_lines)

    parquet = home / "original-parquet"
    parquet.mkdir(exist_ok=True)
    with duckdb.connect(str(PlatformSettings.from_env().duckdb_path), read_only=True) as con:
        con.sql(
            """COPY (SELECT i.user_id, g.genre, g.release_year, i.playtime_forever FROM steam.user_items i
                   JOIN (SELECT item_id, release_year, unnest(genres) AS genre FROM steam.games) g USING (item_id))
                   TO '{}' (FORMAT parquet)""".format(parquet / "items_genres.parquet")
        )
        con.sql(
            f"COPY (SELECT user_id, item_id, year, recommend, sentiment FROM steam.reviews) "
            f"TO '{parquet / 'reviews.parquet'}' (FORMAT parquet)"
        )
        con.sql(
            f"COPY (SELECT item_id, name, tags_genres FROM steam.games) TO '{parquet / 'games.parquet'}' "
            "(FORMAT parquet)"
        )
        con.sql(
            f"COPY (SELECT user_id, item_id, playtime_forever FROM steam.user_items) "
            f"TO '{parquet / 'user_items.parquet'}' (FORMAT parquet)"
        )
        users = [
            u
            for (u,) in con.sql(
                "SELECT DISTINCT user_id FROM steam.user_recommendations ORDER BY user_id LIMIT 50"
            ).fetchall()
        ]
        items = [
            i
            for (i,) in con.sql(
                "SELECT DISTINCT item_id FROM steam.game_recommendations ORDER BY item_id LIMIT 50"
            ).fetchall()
        ]
    quote = urllib.parse.quote
    genres = ["Action", "indie", "RPG", "strategy", "Simulation", "casual", "Adventure"]
    endpoints = {
        "PlayTimeGenre": [f"/PlayTimeGenre/{g}" for g in genres],
        "UserForGenre": [f"/UserForGenre/{g}" for g in genres],
        "UsersRecommend": [f"/UsersRecommend/{y}" for y in (2013, 2014, 2015)],
        "UsersNotRecommend": [f"/UsersNotRecommend/{y}" for y in (2013, 2014, 2015)],
        "sentiment_analysis": [f"/sentiment_analysis/{y}" for y in (2013, 2014, 2015)],
        "game_recommendation": [f"/game_recommendation/{quote(i)}" for i in items],
        "user_recommendation": [f"/user_recommendation/{quote(u)}" for u in users],
    }
    with (
        uvicorn_server(env) as ours_base,
        uvicorn_server(
            {"STEAM_ORIGINAL_PARQUET": str(parquet), "PYTHONPATH": str(REPO / "scripts")},
            app="bench_steam:create_original_app",
        ) as original_base,
    ):
        wait_until_loaded(ours_base, "SnapshotWatcher:steam", timeout=120)  # loads in the background
        print(f"{'endpoint':<22}{'ours p50':>10}{'ours p99':>10}{'orig p50':>11}{'orig p99':>11}{'p50 ratio':>11}")
        for name, paths in endpoints.items():
            ours = _percentiles(ours_base + "/steam", paths, requests, warmup=20)
            orig = _percentiles(original_base, paths, original_requests)
            print(
                f"{name:<22}{ours[0]:>8.2f}ms{ours[1]:>8.2f}ms{orig[0]:>9.1f}ms{orig[1]:>9.1f}ms"
                f"{orig[0] / ours[0]:>10.0f}x"
            )


if __name__ == "__main__":
    app()
