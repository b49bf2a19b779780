"""Raw ingest of the three source files into flat tables (one row per game, review, or user-item)."""

from __future__ import annotations

import functools
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_assets.steam import literal_parser
from mlops_assets.steam.literal_parser import ParseReport, iter_records, open_text_lines

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

REVIEW_FIELDS = ["funny", "posted", "last_edited", "item_id", "helpful", "recommend", "review"]
_ITEM_CHUNK_USERS = 2_000
NAME_LIST_COLUMNS = ("genres", "tags", "specs")


def read_games(path: Path) -> pd.DataFrame:
    """JSON lines written by pandas (bare NaN tokens included), read as-is: 120,445 rows, most of them all-null."""
    import pandas as pd

    frame = pd.read_json(path, lines=True, dtype={"price": object}, convert_dates=False)
    # pandas reads the ids as floats (NaN padding rows); the catalogue keys are the integer ids as text.
    frame["id"] = [None if pd.isna(v) else (str(int(v)) if isinstance(v, float) else str(v)) for v in frame["id"]]
    # The file carries some names HTML-escaped ('Animation &amp; Modeling'); the catalogue holds them as shown.
    for column in NAME_LIST_COLUMNS:
        if column in frame.columns:
            frame[column] = [
                [html.unescape(str(name)) for name in v] if isinstance(v, list) else v for v in frame[column]
            ]
    return frame


def read_reviews(path: Path) -> tuple[pd.DataFrame, ParseReport]:
    """One row per review with its user's fields; users with an empty review list add no row."""
    import pandas as pd

    report = ParseReport()
    columns: dict[str, list] = {name: [] for name in ["line", "user_id", "user_url", *REVIEW_FIELDS]}
    for number, record in iter_records(open_text_lines(path), report):
        for review in record.get("reviews") or []:
            columns["line"].append(number)
            columns["user_id"].append(str(record.get("user_id")))
            columns["user_url"].append(record.get("user_url"))
            for name in REVIEW_FIELDS:
                columns[name].append(review.get(name))
    frame = pd.DataFrame(columns)
    frame["item_id"] = frame["item_id"].astype(str)
    frame["recommend"] = frame["recommend"].astype(bool)
    return frame, report


def read_user_items(path: Path) -> tuple[pd.DataFrame, ParseReport]:
    """One row per (user, item): 5,153,209 rows for the full file. Users with no items add no row.

    Lines are rewritten to JSON and decoded a chunk at a time by Arrow's C++ JSON reader, which also unnests the
    item lists, so no Python code runs per item. A chunk Arrow refuses (a line only `ast` can read, or a broken
    one) is redone line by line, which finds and reports the culprit without losing its neighbours.
    """
    import pyarrow as pa

    report = ParseReport()
    tables: list[pa.Table] = []
    texts: list[str] = []
    numbers: list[int] = []
    for number, line in literal_parser.numbered_lines(open_text_lines(path), report):
        try:
            texts.append(literal_parser.to_json(line))
        except (ValueError, SyntaxError):
            texts.append(line)  # not expressible as JSON: Arrow will refuse the chunk, the slow path decides
        numbers.append(number)
        if len(texts) >= _ITEM_CHUNK_USERS:
            tables.append(_item_chunk(texts, numbers, report))
            texts, numbers = [], []
    tables.append(_item_chunk(texts, numbers, report))
    return pa.concat_tables(tables).to_pandas(), report


@functools.cache
def _user_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("user_id", pa.string()),
            ("items_count", pa.int64()),
            ("steam_id", pa.string()),
            ("user_url", pa.string()),
            (
                "items",
                pa.list_(
                    pa.struct(
                        [
                            ("item_id", pa.string()),
                            ("item_name", pa.string()),
                            ("playtime_forever", pa.int64()),
                            ("playtime_2weeks", pa.int64()),
                        ]
                    )
                ),
            ),
        ]
    )


def _item_chunk(texts: list[str], numbers: list[int], report: ParseReport) -> pa.Table:
    import numpy as np
    import pyarrow as pa
    import pyarrow.json as pa_json

    if not texts:
        return _unnest(pa.Table.from_pylist([], schema=_user_schema()), np.empty(0, dtype=np.int32))
    try:
        users = pa_json.read_json(
            io.BytesIO("\n".join(texts).encode("utf-8", "surrogateescape")),
            parse_options=pa_json.ParseOptions(explicit_schema=_user_schema(), unexpected_field_behavior="ignore"),
        )
        if users.num_rows != len(texts):
            raise pa.ArrowInvalid("row count mismatch")
        report.parsed += len(texts)
        return _unnest(users, np.asarray(numbers, dtype=np.int32))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        lines = {n: t for n, t in zip(numbers, texts, strict=False)}
        records, good = [], []
        for number in numbers:
            try:
                record = literal_parser.parse_literal(lines[number])
                if not isinstance(record, dict):
                    raise TypeError(f"expected a dict, got {type(record).__name__}")
                records.append(_normalised_user(record))
                good.append(number)
            except (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError) as exc:
                report.malformed.append((number, f"{type(exc).__name__}: {str(exc)[:80]}"))
        report.parsed += len(records)
        return _unnest(pa.Table.from_pylist(records, schema=_user_schema()), np.asarray(good, dtype=np.int32))


def _normalised_user(record: dict) -> dict:
    items = [
        {
            "item_id": str(item["item_id"]),
            "item_name": None if item.get("item_name") is None else str(item["item_name"]),
            "playtime_forever": int(item.get("playtime_forever") or 0),
            "playtime_2weeks": int(item.get("playtime_2weeks") or 0),
        }
        for item in record.get("items") or []
    ]
    return {
        "user_id": str(record.get("user_id")),
        "items_count": int(record.get("items_count") or 0),
        "steam_id": None if record.get("steam_id") is None else str(record["steam_id"]),
        "user_url": record.get("user_url"),
        "items": items,
    }


def _unnest(users: pa.Table, numbers: np.ndarray) -> pa.Table:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    items = (
        users.column("items").combine_chunks() if users.num_rows else pa.array([], _user_schema().field("items").type)
    )
    parents = pc.list_parent_indices(items)
    flat = pc.list_flatten(items)
    take = lambda name: pc.take(users.column(name), parents)
    return pa.table(
        {
            "line": pa.array(
                numbers[parents.to_numpy(zero_copy_only=False)] if len(numbers) else np.empty(0, np.int32)
            ),
            "user_id": take("user_id"),
            "items_count": pc.cast(take("items_count"), pa.int32()),
            "item_id": flat.field("item_id"),
            "item_name": flat.field("item_name"),
            "playtime_forever": flat.field("playtime_forever"),
            "playtime_2weeks": flat.field("playtime_2weeks"),
        }
    )
