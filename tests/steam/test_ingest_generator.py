import ast
import gzip

import pandas as pd

from mlops_assets.steam import etl
from mlops_assets.steam.generator import generate_users_items
from mlops_assets.steam.ingest import read_games, read_user_items
from tests.steam.conftest import EXTRACT, USERS


def _generate(tiny_steam_data, tmp_path, seed=3):
    games = etl.game_catalogue(read_games(tiny_steam_data / "steam" / "steam_games.json.gz"))
    return generate_users_items(
        tmp_path / f"items{seed}.json.gz", USERS, games, EXTRACT, pd.Series(["10", "10", "40"]), seed=seed
    )


def test_generator_writes_the_original_format_with_real_counts(tiny_steam_data, tmp_path):
    generated = _generate(tiny_steam_data, tmp_path)
    lines = gzip.open(generated.path, "rt").read().splitlines()
    records = [ast.literal_eval(line) for line in lines]  # the original's Python-literal format
    assert [r["user_id"] for r in records] == USERS["user_id"].tolist()
    assert [len(r["items"]) for r in records] == USERS["items_count"].tolist()
    for record in records:
        assert len({i["item_id"] for i in record["items"]}) == len(record["items"])  # distinct per user
    assert generated.item_rows == 9
    again = _generate(tiny_steam_data, tmp_path, seed=3)
    assert gzip.open(again.path).read() == gzip.open(generated.path).read()  # deterministic by seed


def test_user_items_ingest_matches_ast_and_reports_a_broken_line(tiny_steam_data, tmp_path):
    generated = _generate(tiny_steam_data, tmp_path)
    lines = gzip.open(generated.path, "rt").read().splitlines()
    broken = [*lines[:2], "{'user_id': 'x', 'items': [{'item_id': '1'", *lines[2:]]
    path = tmp_path / "broken.json.gz"
    path.write_bytes(gzip.compress(("\n".join(broken) + "\n").encode()))
    frame, report = read_user_items(path)
    assert [n for n, _ in report.malformed] == [3]
    expected = [
        (r["user_id"], i["item_id"], i["playtime_forever"]) for r in map(ast.literal_eval, lines) for i in r["items"]
    ]
    assert list(frame[["user_id", "item_id", "playtime_forever"]].itertuples(index=False, name=None)) == expected
    assert frame.loc[frame["user_id"] == "dave", "line"].iloc[0] == 5  # line numbers of the file, not of records
