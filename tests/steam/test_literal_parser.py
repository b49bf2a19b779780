import ast
import gzip
import itertools

import pytest

from mlops_assets.steam.literal_parser import ParseReport, iter_records, parse_literal, to_json

TRICKY = [
    "{'user_id': 'a', 'review': 'it\\'s \"great\"', 'recommend': True, 'funny': None}",
    "{'item_name': \"Garry's Mod\", 'x': 'say \"hi\"', 'y': \"'quoted'\", 'z': '\"', 'w': \"'\"}",
    "{'review': 'True, False and None inside text', 'ok': False}",
    "{'emoji': '\\U0001f3fb skin tone', 'latin': '\\xe9t\\xe9', 'tab': 'a\\tb', 'nl': 'x\\ny', 'bs': 'c:\\\\dir'}",
    "{'unicode': 'ça marche — 日本語 👍', 'nums': [1, -2, 3.5, 1e3], 'empty': [], 'nested': {'k': [True]}}",
    "{'tuple': (1, 2), 'big': 123456789012345678901234567890}",
]


@pytest.mark.parametrize("line", TRICKY)
def test_tricky_lines_equal_ast(line):
    assert parse_literal(line) == ast.literal_eval(line)


def test_keywords_inside_strings_are_untouched():
    assert to_json("{'a': 'None of True'}") == '{"a": "None of True"}'


def test_malformed_lines_are_reported_with_their_line_numbers_and_do_not_stop_the_run():
    lines = ["{'a': 1}", "{'a': 'unterminated}", "", "{'a': 2", "[1, 2]", "{'a': 3}"]
    report = ParseReport()
    records = list(iter_records(lines, report))
    assert [number for number, _ in records] == [1, 6]
    assert [number for number, _ in report.malformed] == [2, 4, 5]
    assert report.blank == 1 and report.parsed == 2 and report.lines == 6
    assert "line 2" in report.malformed_summary()


@pytest.mark.realdata
def test_every_eighth_line_of_the_real_reviews_equals_ast(data_dir):
    path = data_dir / "steam" / "australian_user_reviews.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        sample = list(itertools.islice(handle, 0, None, 8))
    assert len(sample) > 3000
    mismatched = [i for i, line in enumerate(sample) if parse_literal(line) != ast.literal_eval(line)]
    assert mismatched == []
