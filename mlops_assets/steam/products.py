"""What the endpoints answer: per-genre/year answer tables, the two recommenders, their evaluation, and the
serving snapshot that hands all of it to the API."""

import dagster as dg
import orjson

from mlops_assets.common.constants import DUCKDB_POOL
from mlops_assets.common.images import figure_png, image_metadata, pyplot
from mlops_assets.common.keys import key, placement
from mlops_assets.common.runs import run_id_of
from mlops_assets.common.tables import table_metadata
from mlops_assets.steam import answers, recommend
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
from resources.object_store import ObjectStore
from resources.snapshots import publish_snapshot

COMMON = dict(**placement(SYSTEM), pool=DUCKDB_POOL, kinds={"pandas", "duckdb"}, code_version="1")


@dg.asset(**COMMON)
def playtime_genre_answers(user_items, games) -> dg.Output:
    """PlayTimeGenre: for each genre, the release year whose games were played the most hours."""
    frame = answers.playtime_genre(user_items, games)
    return dg.Output(frame, metadata={"genres": len(frame), **table_metadata(frame)})


@dg.asset(**COMMON)
def user_for_genre_answers(user_items, games) -> dg.Output:
    """UserForGenre: for each genre, its most devoted player and their hours per release year."""
    frame = answers.user_for_genre(user_items, games)
    return dg.Output(frame, metadata={"genres": int(frame["genre"].nunique()), **table_metadata(frame)})


@dg.asset(**COMMON)
def users_recommend_answers(reviews, games) -> dg.Output:
    """UsersRecommend: for each review year, the 3 games most recommended with a non-negative review."""
    frame = answers.users_recommend(reviews, games)
    return dg.Output(frame, metadata={"years": int(frame["year"].nunique()), **table_metadata(frame)})


@dg.asset(**COMMON)
def users_not_recommend_answers(reviews, games) -> dg.Output:
    """UsersNotRecommend: for each review year, the 3 games most often not recommended with a negative review."""
    frame = answers.users_not_recommend(reviews, games)
    return dg.Output(frame, metadata={"years": int(frame["year"].nunique()), **table_metadata(frame)})


@dg.asset(**COMMON)
def sentiment_answers(reviews) -> dg.Output:
    """sentiment_analysis: negative / neutral / positive review counts per review year."""
    frame = answers.sentiment_by_year(reviews)
    return dg.Output(frame, metadata={"years": len(frame), **table_metadata(frame)})


@dg.asset(
    **COMMON,
    check_specs=[
        dg.AssetCheckSpec("similarity_matches_own_tags", asset=key(SYSTEM, "game_recommendations"), blocking=True)
    ],
)
def game_recommendations(games):
    """game_recommendation: each game's 5 most similar games (cosine over its own tags&genres vector)."""
    import numpy as np

    frame = recommend.item_item(games)
    tags = dict(zip(games["item_id"], (set(v) for v in games["tags_genres"]), strict=False))
    # The original's one-hot table was misaligned with its ids, so its similarities belonged to other games.
    # Recompute every stored similarity from the two games' own tag sets: they must agree.
    expected = np.array(
        [
            len(tags[a] & tags[b]) / np.sqrt(len(tags[a]) * len(tags[b])) if tags[a] and tags[b] else 0.0
            for a, b in zip(frame["item_id"], frame["recommended_id"], strict=False)
        ]
    )
    worst = float(np.max(np.abs(expected - frame["similarity"].to_numpy()))) if len(frame) else 0.0
    yield dg.AssetCheckResult(
        check_name="similarity_matches_own_tags",
        passed=bool(worst < 1e-4),
        metadata={"max_abs_difference": worst, "pairs_checked": len(frame)},
    )
    first = frame[frame["rank"] == 1]
    yield dg.Output(
        frame,
        metadata={
            "games": int(frame["item_id"].nunique()),
            "mean_top1_similarity": float(first["similarity"].mean()),
            **table_metadata(frame),
        },
    )


@dg.asset(**COMMON)
def user_recommendations(user_items, raw_user_items, games) -> dg.Output:
    """user_recommendation: 5 games for every player, from their playtime-weighted taste, none they own."""
    frame = recommend.user_item(user_items, games, owned=raw_user_items[["user_id", "item_id"]])
    return dg.Output(frame, metadata={"users": int(frame["user_id"].nunique()), **table_metadata(frame)})


@dg.asset(**placement(SYSTEM), kinds={"pandas", "matplotlib"}, code_version="1")
def recommender_evaluation(user_items, games, object_store: ObjectStore) -> dg.MaterializeResult:
    """How often the user recommender finds a hidden played game in its top 5, against most-played games."""
    scores = recommend.evaluate_hit_at_k(user_items, games)
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar(
        ["content (ours)", "popularity"],
        [scores["hit_at_5"], scores["popularity_hit_at_5"]],
        color=["#2680c2", "#9fb3c8"],
    )
    ax.set_ylabel("hit@5 on a held-out played game")
    png = figure_png(fig)
    chart_key = "steam/evaluation/hit_at_5.png"
    object_store.put_bytes(chart_key, png, "image/png")
    return dg.MaterializeResult(
        metadata={
            **{k: float(v) for k, v in scores.items()},
            **image_metadata(png, object_store.uri(chart_key), "hit@5"),
        }
    )


def _lower_unique(keys) -> dict[str, str]:
    lowered: dict[str, list[str]] = {}
    for name in keys:
        lowered.setdefault(name.lower(), []).append(name)
    return {low: originals[0] for low, originals in lowered.items() if len(originals) == 1}


@dg.asset(**placement(SYSTEM), kinds={"json"}, code_version="1")
def serving_snapshot(
    context: dg.AssetExecutionContext,
    playtime_genre_answers,
    user_for_genre_answers,
    users_recommend_answers,
    users_not_recommend_answers,
    sentiment_answers,
    game_recommendations,
    user_recommendations,
    games,
    object_store: ObjectStore,
) -> dg.MaterializeResult:
    """Every answer the API gives, published as one immutable snapshot; serving swaps to it within a second."""
    genre_years = {
        g: [{"year": int(y), "hours": float(h)} for y, h in zip(part["year"], part["hours"], strict=False)]
        for g, part in user_for_genre_answers.groupby("genre")
    }
    ranked = lambda frame: {
        int(y): [
            {"rank": int(r), "item_id": i, "name": n}
            for r, i, n in zip(part["rank"], part["item_id"], part["name"], strict=False)
        ]
        for y, part in frame.groupby("year")
    }

    def grouped_ids(frame, column, value):
        ordered = frame.sort_values([column, "rank"])
        return {k: list(part[value]) for k, part in ordered.groupby(column, sort=False)}

    user_recs = grouped_ids(user_recommendations, "user_id", "recommended_id")
    files = {
        PLAYTIME_GENRE_FILE: {
            g: int(y) for g, y in zip(playtime_genre_answers["genre"], playtime_genre_answers["year"], strict=False)
        },
        USER_FOR_GENRE_FILE: {
            g: {"user_id": u, "years": genre_years.get(g, [])}
            for g, u in user_for_genre_answers.drop_duplicates("genre")[["genre", "user_id"]].itertuples(
                index=False, name=None
            )
        },
        USERS_RECOMMEND_FILE: ranked(users_recommend_answers),
        USERS_NOT_RECOMMEND_FILE: ranked(users_not_recommend_answers),
        SENTIMENT_FILE: {
            int(r.year): {"Negative": int(r.negative), "Neutral": int(r.neutral), "Positive": int(r.positive)}
            for r in sentiment_answers.itertuples()
        },
        GAME_RECOMMENDATIONS_FILE: grouped_ids(game_recommendations, "item_id", "recommended_id"),
        USER_RECOMMENDATIONS_FILE: user_recs,
        USER_IDS_LOWER_FILE: _lower_unique(user_recs),
        GAME_NAMES_FILE: dict(zip(games["item_id"], games["name"], strict=False)),
    }
    encoded = {name: orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS) for name, value in files.items()}
    pointer = publish_snapshot(
        object_store, SYSTEM, encoded, manifest={"format": SNAPSHOT_FORMAT, "dagster_run_id": run_id_of(context)}
    )
    return dg.MaterializeResult(
        metadata={
            "snapshot_id": pointer["snapshot_id"],
            "bytes": sum(len(v) for v in encoded.values()),
            "genres": len(files[PLAYTIME_GENRE_FILE]),
            "users": len(user_recs),
            "games": len(files[GAME_RECOMMENDATIONS_FILE]),
        }
    )
