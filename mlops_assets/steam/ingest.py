"""Raw ingest of the three source files into flat tables (one row per game, review, or user-item)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from mlops_assets.steam.literal_parser import ParseReport, iter_records, open_text_lines

REVIEW_FIELDS = ["funny", "posted", "last_edited", "item_id", "helpful", "recommend", "review"]
ITEM_FIELDS = ["item_id", "item_name", "playtime_forever", "playtime_2weeks"]
_ITEM_CHUNK_USERS = 20_000


def read_games(path: Path) -> pd.DataFrame:
    """JSON lines written by pandas (bare NaN tokens included), read as-is: 120,445 rows, most of them all-null."""
    frame = pd.read_json(path, lines=True, dtype={"price": object}, convert_dates=False)
    # pandas reads the ids as floats (NaN padding rows); the catalogue keys are the integer ids as text.
    frame["id"] = [None if pd.isna(v) else (str(int(v)) if isinstance(v, float) else str(v)) for v in frame["id"]]
    return frame


def read_reviews(path: Path) -> tuple[pd.DataFrame, ParseReport]:
    """One row per review with its user's fields; users with an empty review list add no row."""
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
    """One row per (user, item): 5,153,209 rows for the full file. Users with no items add no row."""
    report = ParseReport()
    tables: list[pa.Table] = []
    columns = _empty_item_columns()
    users_in_chunk = 0
    for number, record in iter_records(open_text_lines(path), report):
        items = record.get("items") or []
        if items:
            n = len(items)
            columns["line"].append(np.full(n, number, dtype=np.int32))
            columns["user_id"].extend([str(record.get("user_id"))] * n)
            columns["items_count"].append(np.full(n, int(record.get("items_count") or 0), dtype=np.int32))
            columns["item_id"].extend([item["item_id"] for item in items])
            columns["item_name"].extend([item["item_name"] for item in items])
            columns["playtime_forever"].extend([item["playtime_forever"] for item in items])
            columns["playtime_2weeks"].extend([item["playtime_2weeks"] for item in items])
        users_in_chunk += 1
        if users_in_chunk >= _ITEM_CHUNK_USERS:
            tables.append(_item_table(columns))
            columns, users_in_chunk = _empty_item_columns(), 0
    tables.append(_item_table(columns))
    frame = pa.concat_tables(tables).to_pandas()
    return frame, report


def _empty_item_columns() -> dict[str, list]:
    return {name: [] for name in ["line", "user_id", "items_count", *ITEM_FIELDS]}


def _item_table(columns: dict[str, list]) -> pa.Table:
    def ints(chunks: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int32)

    return pa.table({
        "line": ints(columns["line"]),
        "user_id": pa.array(columns["user_id"], pa.string()),
        "items_count": ints(columns["items_count"]),
        "item_id": pa.array([str(v) for v in columns["item_id"]], pa.string()),
        "item_name": pa.array([None if v is None else str(v) for v in columns["item_name"]], pa.string()),
        "playtime_forever": pa.array(columns["playtime_forever"], pa.int64()),
        "playtime_2weeks": pa.array(columns["playtime_2weeks"], pa.int64()),
    })
