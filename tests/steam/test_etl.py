import pandas as pd
import pytest

from mlops_assets.steam import etl
from mlops_assets.steam.ingest import read_games, read_reviews
from tests.steam.conftest import USERS


def test_price_rules():
    assert etl.numeric_price(4.99) == 4.99
    assert etl.numeric_price("19.99") == 19.99
    assert etl.numeric_price("Free To Play") == 0.0
    assert etl.numeric_price(None) == 0.0
    assert etl.numeric_price(float("nan")) == 0.0


def test_posted_dates_and_the_yearless_2020_rule():
    assert etl.posted_date("Posted November 5, 2011.") == (pd.Timestamp("2011-11-05"), 2011)
    assert etl.posted_date("Posted July 10.") == (pd.Timestamp("2020-07-10"), 2020)
    assert etl.posted_date("") == (None, None)


@pytest.mark.parametrize("polarity, expected", [(-0.5, 0), (-0.33, 1), (0.0, 1), (0.3299, 1), (0.33, 2), (None, 1)])
def test_sentiment_thresholds(polarity, expected):
    assert etl.sentiment_from_polarity(polarity) == expected


def test_missing_review_is_neutral_and_textblob_works_offline():
    assert etl.review_sentiment("", etl.textblob_polarity) == 1
    assert etl.review_sentiment(None, etl.textblob_polarity) == 1
    assert etl.review_sentiment("Terrible, awful, the worst.", etl.textblob_polarity) == 0
    assert etl.review_sentiment("A wonderful, great game", etl.textblob_polarity) == 2


def test_clean_games_rules(tiny_steam_data):
    raw = read_games(tiny_steam_data / "steam" / "steam_games.json.gz")
    raw = pd.concat([raw, raw.iloc[[0]]])  # a duplicated id
    reviews = pd.DataFrame({"item_id": ["30"], "posted_date": [pd.Timestamp("2012-03-04")]})
    games = etl.clean_games(raw, reviews).set_index("item_id")
    assert len(games) == 6  # all-null rows dropped, duplicate id dropped
    assert games.loc["30", "name"] == "Day of Defeat"  # title when app_name is missing
    assert games.loc["30", "price"] == 0.0
    assert games.loc["30", "release_date"] == pd.Timestamp("2012-03-04")  # from its first review
    assert games.loc["30", "release_date_source"] == "first review"
    assert games.loc["10", "tags_genres"] == ["Action", "FPS", "Multiplayer"]  # union without repeats
    assert games["release_date"].notna().all()


def test_clean_games_knn_fills_dates_without_reviews(tiny_steam_data):
    raw = read_games(tiny_steam_data / "steam" / "steam_games.json.gz")
    games = etl.clean_games(raw, pd.DataFrame({"item_id": [], "posted_date": []})).set_index("item_id")
    assert games.loc["30", "release_date_source"] == "knn"
    # Free game: its 3 nearest by price are 0, 4.99, 9.99 -> mean of their dates.
    expected = pd.to_datetime(["2005-01-01", "1999-04-01", "2000-11-01"])
    mean_days = (expected - etl.DATE_ORIGIN).days.to_numpy().mean()
    assert abs((games.loc["30", "release_date"] - etl.DATE_ORIGIN).days - mean_days) <= 1


def test_reviews_explode_and_items_keep_played_only(tiny_steam_data):
    raw, report = read_reviews(tiny_steam_data / "steam" / "australian_user_reviews.json.gz")
    assert len(raw) == 4 and report.malformed[0][0] == 4
    items = pd.DataFrame(
        {"user_id": ["a", "a"], "item_id": ["1", "2"], "playtime_forever": [0, 5], "playtime_2weeks": [0, 0]}
    )
    assert etl.clean_items(items)["item_id"].tolist() == ["2"]
    assert USERS["items_count"].sum() == 9


def test_genre_and_tag_names_are_html_unescaped_at_ingest(tmp_path):
    import gzip
    import json

    from tests.support import shared_data_dir

    real = None if shared_data_dir() is None else shared_data_dir() / "steam" / "steam_games.json.gz"
    path = tmp_path / "steam_games.json.gz"
    if real is not None and real.exists():
        # The real file's escaped lines only: reading all 120,445 lines would cost the suite half a minute.
        with gzip.open(real, "rt", encoding="utf-8") as lines:
            escaped = [line for line in lines if "&amp;" in line]
        assert len(escaped) > 100
        path.write_bytes(gzip.compress("".join(escaped).encode()))
    else:
        path.write_bytes(
            gzip.compress(
                json.dumps(
                    {
                        "id": "1",
                        "app_name": "Blender",
                        "genres": ["Animation &amp; Modeling"],
                        "tags": ["Animation &amp; Modeling", "Design &amp; Illustration"],
                        "specs": ["Single-player"],
                    }
                ).encode()
            )
        )
    games = read_games(path)
    names = {
        name
        for column in ("genres", "tags", "specs")
        for cell in games[column]
        if isinstance(cell, list)
        for name in cell
    }
    assert "Animation & Modeling" in names and "Design & Illustration" in names
    assert not [name for name in names if "&amp;" in name or "&#" in name]
