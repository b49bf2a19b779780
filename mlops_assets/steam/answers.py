"""Every answer of the five query endpoints, computed ahead of time (serving only looks them up)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_assets.steam.etl import NEGATIVE, NEUTRAL, POSITIVE

if TYPE_CHECKING:
    import pandas as pd


def _genre_rows(items: pd.DataFrame, games: pd.DataFrame) -> pd.DataFrame:
    """Played items joined with their game's genres, one row per (user, item, genre)."""
    genres = games[["item_id", "genres", "release_year"]].explode("genres").dropna(subset=["genres"])
    return items[["user_id", "item_id", "playtime_forever"]].merge(genres, on="item_id")


def playtime_genre(items: pd.DataFrame, games: pd.DataFrame) -> pd.DataFrame:
    """Per genre: the release year with the most hours played (the argmax; the original returned the earliest)."""
    import pandas as pd

    rows = _genre_rows(items, games)
    by_year = rows.groupby(["genres", "release_year"], as_index=False)["playtime_forever"].sum()
    by_year = by_year.sort_values(["genres", "playtime_forever", "release_year"], ascending=[True, False, True])
    best = by_year.drop_duplicates("genres")
    return pd.DataFrame(
        {
            "genre": best["genres"].to_numpy(),
            "year": best["release_year"].astype(int).to_numpy(),
            "hours": (best["playtime_forever"] / 60).round(1).to_numpy(),
        }
    )


def user_for_genre(items: pd.DataFrame, games: pd.DataFrame) -> pd.DataFrame:
    """Per genre: the user with the most hours in it, and that user's hours per release year (one row per year)."""
    import pandas as pd

    rows = _genre_rows(items, games)
    per_user = rows.groupby(["genres", "user_id"], as_index=False)["playtime_forever"].sum()
    per_user = per_user.sort_values(["genres", "playtime_forever", "user_id"], ascending=[True, False, True])
    top = per_user.drop_duplicates("genres")[["genres", "user_id"]]
    years = (
        rows.merge(top, on=["genres", "user_id"])
        .groupby(["genres", "user_id", "release_year"], as_index=False)["playtime_forever"]
        .sum()
    )
    return pd.DataFrame(
        {
            "genre": years["genres"].to_numpy(),
            "user_id": years["user_id"].to_numpy(),
            "year": years["release_year"].astype(int).to_numpy(),
            "hours": (years["playtime_forever"] / 60).round(1).to_numpy(),
        }
    )


def _top3(reviews: pd.DataFrame, games: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    counted = reviews[mask].dropna(subset=["year"]).groupby(["year", "item_id"], as_index=False).size()
    counted = counted.sort_values(["year", "size", "item_id"], ascending=[True, False, True])
    counted["rank"] = counted.groupby("year").cumcount() + 1
    counted = counted[counted["rank"] <= 3]
    names = games.set_index("item_id")["name"]
    counted["name"] = counted["item_id"].map(names).fillna("item " + counted["item_id"])
    return (
        counted.rename(columns={"size": "reviews"})[["year", "rank", "item_id", "name", "reviews"]]
        .astype({"year": int})
        .reset_index(drop=True)
    )


def users_recommend(reviews: pd.DataFrame, games: pd.DataFrame) -> pd.DataFrame:
    """Per review year: the 3 games most recommended (recommend true, sentiment neutral or positive)."""
    return _top3(reviews, games, reviews["recommend"] & reviews["sentiment"].isin([NEUTRAL, POSITIVE]))


def users_not_recommend(reviews: pd.DataFrame, games: pd.DataFrame) -> pd.DataFrame:
    """Per review year: the 3 games most not-recommended (recommend false, sentiment negative)."""
    return _top3(reviews, games, ~reviews["recommend"] & (reviews["sentiment"] == NEGATIVE))


def sentiment_by_year(reviews: pd.DataFrame) -> pd.DataFrame:
    """Per review year: counts of negative / neutral / positive reviews."""
    import pandas as pd

    counts = reviews.dropna(subset=["year"]).groupby(["year", "sentiment"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=[NEGATIVE, NEUTRAL, POSITIVE], fill_value=0)
    return pd.DataFrame(
        {
            "year": counts.index.astype(int),
            "negative": counts[NEGATIVE].to_numpy(),
            "neutral": counts[NEUTRAL].to_numpy(),
            "positive": counts[POSITIVE].to_numpy(),
        }
    )
