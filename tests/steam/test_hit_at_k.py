"""The recommender evaluation on a case whose hit rate is known: each evaluated user has played 5 of the 6 games,
so after one is hidden only 2 games are left to recommend, and both methods' top 5 must contain the hidden one."""

import itertools

import pandas as pd

from mlops_assets.steam import recommend
from tests.steam.test_recommend_answers import GAMES


def test_hit_rate_is_one_when_the_hidden_game_is_always_among_the_top_k():
    libraries = list(itertools.combinations(GAMES["item_id"], 5)) * 5  # 30 users, every 5-of-6 library
    items = pd.DataFrame(
        [(f"u{u}", item, 60 * (1 + (u + int(item)) % 7)) for u, library in enumerate(libraries) for item in library],
        columns=["user_id", "item_id", "playtime_forever"],
    )
    scores = recommend.evaluate_hit_at_k(items, GAMES, sample_users=20)
    assert scores == {"hit_at_5": 1.0, "popularity_hit_at_5": 1.0, "users_evaluated": 20.0}


def test_users_with_fewer_than_five_played_games_are_not_evaluated():
    items = pd.DataFrame(
        [(f"u{u}", item, 60) for u in range(10) for item in GAMES["item_id"][:4]],
        columns=["user_id", "item_id", "playtime_forever"],
    )
    assert recommend.evaluate_hit_at_k(items, GAMES) == {
        "hit_at_5": 0.0,
        "popularity_hit_at_5": 0.0,
        "users_evaluated": 0.0,
    }
