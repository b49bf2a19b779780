"""The original's ETL rules as pure functions on DataFrames (what the cleaned-table assets apply)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


# The original's constants.
KNN_NEIGHBOURS = 3
DATE_ORIGIN = datetime(1970, 7, 15)  # a datetime, not a Timestamp: pandas is imported where it is used
NEGATIVE_BELOW = -0.33
POSITIVE_FROM = 0.33
YEARLESS_REVIEW_YEAR = 2020
NEGATIVE, NEUTRAL, POSITIVE = 0, 1, 2

GAME_COLUMNS = [
    "publisher",
    "genres",
    "app_name",
    "title",
    "url",
    "release_date",
    "tags",
    "reviews_url",
    "specs",
    "price",
    "early_access",
    "id",
    "developer",
]
_POSTED = re.compile(r"Posted\s+([A-Za-z]+)\s+(\d{1,2})(?:,\s*(\d{4}))?")


def as_list(value) -> list[str]:
    """Genres/tags cells are lists, NaN or (after a DuckDB round trip) numpy arrays; always a list of str."""
    import numpy as np

    if not isinstance(value, (list, tuple, np.ndarray)):
        return []
    return [str(v) for v in value]


def union_keep_order(*lists: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for values in lists:
        for value in values:
            seen.setdefault(value, None)
    return list(seen)


def numeric_price(value) -> float:
    """'Free To Play', 'Free', 'Starting at $499.00' and missing prices are 0 (the original's 'no price' policy).

    The raw table stores prices as text (the column mixes numbers and words), so numeric text counts as a number.
    """
    import numpy as np

    try:
        price = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if np.isnan(price) else price


def posted_date(posted: str | None) -> tuple[pd.Timestamp | None, int | None]:
    """'Posted November 5, 2011.' -> (2011-11-05, 2011); 'Posted July 10.' (this year's, on Steam) -> year 2020."""
    import pandas as pd

    match = _POSTED.search(posted or "")
    if not match:
        return None, None
    month, day, year = match.groups()
    year_value = int(year) if year else YEARLESS_REVIEW_YEAR
    stamp = pd.to_datetime(f"{month} {day} {year_value}", format="%B %d %Y", errors="coerce")
    return (None if pd.isna(stamp) else stamp), year_value


def sentiment_from_polarity(polarity: float | None) -> int:
    if polarity is None:
        return NEUTRAL
    if polarity < NEGATIVE_BELOW:
        return NEGATIVE
    if polarity < POSITIVE_FROM:
        return NEUTRAL
    return POSITIVE


def review_sentiment(review: str | None, polarity_of) -> int:
    """Missing or blank review -> neutral; else TextBlob polarity bucketed with the original's thresholds."""
    if review is None or not str(review).strip():
        return NEUTRAL
    return sentiment_from_polarity(polarity_of(str(review)))


def textblob_polarity(text: str) -> float:
    """TextBlob's default PatternAnalyzer polarity, called directly (same value as `TextBlob(text).sentiment`,
    without building a blob per review). Its lexicon ships inside the wheel: it needs no corpus download."""
    from textblob.en import sentiment

    return sentiment(text)[0]


def clean_reviews(raw: pd.DataFrame, polarity_of=textblob_polarity) -> pd.DataFrame:
    """One row per review: date and year from 'posted', sentiment 0/1/2, recommend as bool."""
    import numpy as np
    import pandas as pd

    dates = [posted_date(p) for p in raw["posted"]]
    sentiments = [review_sentiment(r, polarity_of) for r in raw["review"]]
    return pd.DataFrame(
        {
            "user_id": raw["user_id"].astype(str).to_numpy(),
            "item_id": raw["item_id"].astype(str).to_numpy(),
            "recommend": raw["recommend"].astype(bool).to_numpy(),
            "review": raw["review"].fillna("").astype(str).to_numpy(),
            "posted_date": pd.to_datetime(pd.Series([d for d, _ in dates], dtype="object")).to_numpy(),
            "year": pd.array([y for _, y in dates], dtype="Int64"),
            "sentiment": np.asarray(sentiments, dtype=np.int8),
        }
    )


def game_catalogue(raw: pd.DataFrame) -> pd.DataFrame:
    """item_id, name and genres of every game row: what the users-items generator draws from."""
    import pandas as pd

    games = raw[raw["id"].notna()].copy()
    games["item_id"] = games["id"].astype(str).str.replace(r"\.0$", "", regex=True)
    games = games.drop_duplicates(subset="item_id", keep="first")
    name = games["app_name"].where(games["app_name"].notna(), games["title"]).fillna("")
    return pd.DataFrame(
        {
            "item_id": games["item_id"].to_numpy(),
            "name": name.astype(str).to_numpy(),
            "genres": [as_list(v) for v in games["genres"]],
        }
    )


def clean_games(raw: pd.DataFrame, reviews: pd.DataFrame) -> pd.DataFrame:
    """Drop all-null rows, union tags&genres, price -> number, dedupe ids, name, release dates (review, then KNN)."""
    import numpy as np
    import pandas as pd

    games = raw.dropna(how="all", subset=[c for c in GAME_COLUMNS if c in raw.columns]).copy()
    games = games[games["id"].notna()]
    games["item_id"] = games["id"].astype(str).str.replace(r"\.0$", "", regex=True)
    games = games.drop_duplicates(subset="item_id", keep="first")
    genres = [as_list(v) for v in games["genres"]]
    tags = [as_list(v) for v in games["tags"]]
    name = games["app_name"].where(games["app_name"].notna(), games["title"])
    release = pd.to_datetime(games["release_date"], format="%Y-%m-%d", errors="coerce")

    first_review = reviews.dropna(subset=["posted_date"]).groupby("item_id")["posted_date"].min()
    from_reviews = games["item_id"].map(first_review)
    filled_from_reviews = release.isna() & from_reviews.notna()
    release = release.where(~filled_from_reviews, from_reviews)
    price = np.array([numeric_price(p) for p in games["price"]], dtype=float)
    days = (release - DATE_ORIGIN).dt.days.astype(float).to_numpy()
    knn_filled = np.isnan(days)
    if knn_filled.any() and (~knn_filled).sum() >= KNN_NEIGHBOURS:
        from sklearn.impute import KNNImputer

        imputed = KNNImputer(n_neighbors=KNN_NEIGHBOURS).fit_transform(np.column_stack([days, price]))
        days = imputed[:, 0]
    release = DATE_ORIGIN + pd.to_timedelta(np.round(days), unit="D")

    return pd.DataFrame(
        {
            "item_id": games["item_id"].to_numpy(),
            "name": name.fillna("").astype(str).to_numpy(),
            "genres": genres,
            "tags": tags,
            "tags_genres": [union_keep_order(g, t) for g, t in zip(genres, tags, strict=False)],
            "price": price,
            "release_date": release.to_numpy() if hasattr(release, "to_numpy") else release,
            "release_year": pd.DatetimeIndex(release).year.astype("int32"),
            "release_date_source": np.where(
                filled_from_reviews.to_numpy(), "first review", np.where(knn_filled, "knn", "store")
            ),
            "developer": games["developer"].fillna("").astype(str).to_numpy(),
            "publisher": games["publisher"].fillna("").astype(str).to_numpy(),
            "early_access": games["early_access"].fillna(False).astype(bool).to_numpy(),
        }
    )


def clean_items(raw_items: pd.DataFrame) -> pd.DataFrame:
    """Played items only (playtime_forever > 0), the original's rule."""
    played = raw_items[raw_items["playtime_forever"] > 0]
    return played[["user_id", "item_id", "playtime_forever", "playtime_2weeks"]].reset_index(drop=True)
