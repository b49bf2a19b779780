import numpy as np
import pandas as pd

from mlops_assets.steam import answers, recommend

GAMES = pd.DataFrame(
    {
        "item_id": ["1", "2", "3", "4", "5", "6"],
        "name": ["Shooter A", "Puzzle A", "Shooter B", "Puzzle B", "Farm", "Shooter C"],
        "genres": [["Action"], ["Casual"], ["Action"], ["Casual"], ["Simulation"], ["Action"]],
        "tags_genres": [
            ["Action", "FPS"],
            ["Casual", "Puzzle"],
            ["Action", "FPS"],
            ["Casual", "Puzzle", "Match 3"],
            ["Simulation"],
            ["Action", "FPS", "Gore"],
        ],
        "release_year": [2010, 2011, 2012, 2013, 2014, 2015],
    }
)


def test_each_game_is_most_similar_to_the_game_sharing_its_tags():
    recs = recommend.item_item(GAMES, k=2)
    first = recs[recs["rank"] == 1].set_index("item_id")["recommended_id"]
    assert first["1"] == "3" and first["3"] == "1"  # identical tag sets
    assert first["2"] == "4" and first["4"] == "2"
    assert "1" not in recs.loc[recs["item_id"] == "1", "recommended_id"].tolist()  # never itself
    pair = recs[(recs["item_id"] == "1") & (recs["recommended_id"] == "6")]["similarity"].iloc[0]
    assert np.isclose(pair, 2 / np.sqrt(2 * 3))  # the cosine of the two games' own vectors


def test_user_recommendations_follow_playtime_and_exclude_owned_games():
    items = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["1", "2", "4"], "playtime_forever": [10_000, 5, 100]})
    recs = recommend.user_item(items, GAMES, k=2)
    mine = recs[recs["user_id"] == "u"].sort_values("rank")["recommended_id"].tolist()
    assert mine[0] in {"3", "6"}  # the shooter fan gets a shooter
    assert not {"1", "2"} & set(mine)


def test_playtime_genre_is_the_argmax_year_not_the_earliest():
    items = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["1", "3", "6"], "playtime_forever": [10, 500, 20]})
    table = answers.playtime_genre(items, GAMES).set_index("genre")
    assert table.loc["Action", "year"] == 2012


def test_user_for_genre_has_hours_per_year_of_the_top_user():
    items = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["1", "3", "6"], "playtime_forever": [60, 120, 150]})
    table = answers.user_for_genre(items, GAMES)
    action = table[table["genre"] == "Action"]
    assert set(action["user_id"]) == {"a"}
    assert action.set_index("year")["hours"].to_dict() == {2010: 1.0, 2012: 2.0}


def test_recommend_top3_and_sentiment_by_year():
    reviews = pd.DataFrame(
        {
            "item_id": ["1", "1", "2", "3", "5", "4"],
            "recommend": [True, True, True, True, True, False],
            "sentiment": [2, 1, 2, 0, 2, 0],
            "year": pd.array([2015] * 6, dtype="Int64"),
        }
    )
    top = answers.users_recommend(reviews, GAMES)
    assert top["item_id"].tolist() == ["1", "2", "5"] and top["rank"].tolist() == [1, 2, 3]
    worst = answers.users_not_recommend(reviews, GAMES)
    assert worst["item_id"].tolist() == ["4"]
    counts = answers.sentiment_by_year(reviews).iloc[0]
    assert (counts["negative"], counts["neutral"], counts["positive"]) == (2, 1, 3)


def test_evaluation_reports_hit_rates_for_both_methods():
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", str(g), int(rng.integers(1, 500))) for u in range(40) for g in rng.choice(6, 5, replace=False) + 1
    ]
    items = pd.DataFrame(rows, columns=["user_id", "item_id", "playtime_forever"])
    scores = recommend.evaluate_hit_at_k(items, GAMES, sample_users=20)
    assert scores["users_evaluated"] == 20.0
    assert 0.0 <= scores["hit_at_5"] <= 1.0 and 0.0 <= scores["popularity_hit_at_5"] <= 1.0
