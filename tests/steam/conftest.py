"""A tiny Steam data folder in the real files' layout and formats (games JSON lines, Python-literal reviews)."""

import gzip
import json

import pandas as pd
import pytest

GAMES = [
    {
        "id": "10",
        "app_name": "Counter-Strike",
        "genres": ["Action"],
        "tags": ["Action", "FPS", "Multiplayer"],
        "release_date": "2000-11-01",
        "price": 9.99,
    },
    {
        "id": "20",
        "app_name": "Team Fortress Classic",
        "genres": ["Action"],
        "tags": ["Action", "FPS", "Multiplayer"],
        "release_date": "1999-04-01",
        "price": 4.99,
    },
    {
        "id": "30",
        "app_name": None,
        "title": "Day of Defeat",
        "genres": ["Action"],
        "tags": ["FPS", "World War II"],
        "release_date": None,
        "price": "Free To Play",
    },
    {
        "id": "40",
        "app_name": "Puzzle Quest",
        "genres": ["Casual", "Puzzle"],
        "tags": ["Puzzle", "Match 3"],
        "release_date": "2007-10-01",
        "price": 14.99,
    },
    {
        "id": "50",
        "app_name": "Puzzle Pirates",
        "genres": ["Casual", "Puzzle"],
        "tags": ["Puzzle", "Pirates"],
        "release_date": "2005-01-01",
        "price": 0,
    },
    {
        "id": "60",
        "app_name": "Farm Sim",
        "genres": ["Simulation"],
        "tags": ["Simulation", "Farming"],
        "release_date": "2013-05-01",
        "price": 19.99,
    },
]


def _game_line(game: dict) -> str:
    row = {
        "publisher": "P",
        "genres": None,
        "app_name": None,
        "title": None,
        "url": None,
        "release_date": None,
        "tags": None,
        "reviews_url": None,
        "specs": ["Single-player"],
        "price": None,
        "early_access": False,
        "id": None,
        "developer": "D",
        **game,
    }
    return json.dumps(row)


REVIEWS = [
    {
        "user_id": "Alice",
        "user_url": "u/alice",
        "reviews": [
            {
                "funny": "",
                "posted": "Posted November 5, 2015.",
                "last_edited": "",
                "item_id": "10",
                "helpful": "",
                "recommend": True,
                "review": "Great game, wonderful and fun!",
            },
            {
                "funny": "",
                "posted": "Posted July 10.",
                "last_edited": "",
                "item_id": "40",
                "helpful": "",
                "recommend": False,
                "review": "Terrible, awful, the worst.",
            },
        ],
    },
    {
        "user_id": "bob",
        "user_url": "u/bob",
        "reviews": [
            {
                "funny": "",
                "posted": "Posted March 2, 2015.",
                "last_edited": "",
                "item_id": "10",
                "helpful": "",
                "recommend": True,
                "review": 'It\'s "ok".',
            },
            {
                "funny": "",
                "posted": "Posted March 3, 2014.",
                "last_edited": "",
                "item_id": "30",
                "helpful": "",
                "recommend": True,
                "review": "",
            },
        ],
    },
    {"user_id": "carol", "user_url": "u/carol", "reviews": []},
]

USERS = pd.DataFrame(
    {
        "user_id": ["Alice", "bob", "carol", "dave"],
        "items_count": [3, 4, 0, 2],
        "steam_id": ["1", "2", "3", "4"],
        "user_url": ["u/a", "u/b", "u/c", "u/d"],
        "indice_ui": [0.0, 1.0, 2.0, 3.0],
    }
)
EXTRACT = pd.DataFrame(
    {
        "user_id": ["Alice", "bob", "bob", "dave"],
        "item_id": [10, 10, 40, 60],
        "item_name": ["Counter-Strike", "Counter-Strike", "Puzzle Quest", "Farm Sim"],
        "items_count": [3, 4, 4, 2],
        "playtime_forever": [600, 30, 1200, 90],
        "playtime_2weeks": [0, 5, 0, 0],
    }
)


@pytest.fixture
def tiny_steam_data(tmp_path):
    """A data folder holding tiny copies of the Steam files (no users_items: the generator stands in)."""
    folder = tmp_path / "data" / "steam"
    folder.mkdir(parents=True)
    lines = [_game_line(g) for g in GAMES] + ['{"publisher": NaN, "genres": NaN, "app_name": NaN, "id": NaN}'] * 3
    (folder / "steam_games.json.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    review_lines = [repr(r) for r in REVIEWS] + ["{'user_id': 'broken', 'reviews': [}"]
    (folder / "australian_user_reviews.json.gz").write_bytes(gzip.compress(("\n".join(review_lines) + "\n").encode()))
    USERS.to_parquet(folder / "users_items_users.parquet")
    EXTRACT.to_parquet(folder / "user_items_4Api.parquet")
    return tmp_path / "data"
