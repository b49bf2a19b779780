"""Raw and cleaned tables of the Steam games system (DuckDB schema `steam`)."""

import tempfile
from pathlib import Path

import dagster as dg

from mlops_assets.common.constants import DUCKDB_POOL
from mlops_assets.common.keys import key, placement
from mlops_assets.common.tables import table_metadata
from mlops_assets.steam import etl, ingest
from mlops_assets.steam.constants import (
    GENERATED_ITEMS_KEY,
    GOLDEN_SENTIMENT,
    GOLDEN_SENTIMENT_YEAR,
    REAL_GAME_LINES,
    REAL_GAME_ROWS,
    REAL_REVIEW_ROWS,
    SYSTEM,
)
from mlops_assets.steam.generator import generate_users_items
from mlops_assets.steam.literal_parser import ParseReport
from mlops_assets.steam.sources import GAMES_FILE, ITEMS_EXTRACT_FILE, REVIEWS_FILE, USERS_FILE, USERS_ITEMS_FILE
from resources.data_source import DatasetUnavailable, DataSource
from resources.object_store import ObjectStore

COMMON = dict(**placement(SYSTEM), pool=DUCKDB_POOL)


def _parse_check(asset: str, report: ParseReport, path_label: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key(SYSTEM, asset),
        check_name="lines_parse",
        passed=not report.malformed,
        severity=dg.AssetCheckSeverity.WARN,
        description=None if not report.malformed else f"{path_label}: {report.malformed_summary()}",
        metadata={
            "lines": report.lines,
            "parsed": report.parsed,
            "malformed": len(report.malformed),
            "malformed_lines": dg.MetadataValue.text(report.malformed_summary() or "none"),
        },
    )


def _parse_metadata(report: ParseReport) -> dict:
    return {"lines": report.lines, "parsed_lines": report.parsed, "malformed_lines": len(report.malformed)}


@dg.asset(
    **COMMON,
    kinds={"python", "duckdb"},
    code_version="2",
    check_specs=[dg.AssetCheckSpec("non_empty_game_rows", asset=key(SYSTEM, "raw_games"))],
)
def raw_games(context: dg.AssetExecutionContext, data_source: DataSource):
    """The store's game catalogue as published (JSON lines; about three quarters of the lines are all-null)."""
    import pandas as pd

    fetched = data_source.fetch(GAMES_FILE)
    frame = ingest.read_games(fetched.path)
    non_empty = int(frame.notna().any(axis=1).sum())
    for column in ("genres", "tags", "specs"):
        frame[column] = [list(v) if isinstance(v, list) else None for v in frame[column]]
    frame["price"] = [None if pd.isna(v) else str(v) for v in frame["price"]]
    real = len(frame) == REAL_GAME_LINES
    yield dg.AssetCheckResult(
        check_name="non_empty_game_rows",
        passed=(non_empty == REAL_GAME_ROWS) if real else non_empty > 0,
        metadata={"non_empty_rows": non_empty, "expected": REAL_GAME_ROWS if real else "any (not the real file)"},
    )
    yield dg.Output(
        frame,
        metadata={**fetched.metadata(), **table_metadata(frame), "non_empty_rows": non_empty},
        data_version=fetched.data_version,
    )


@dg.asset(
    **COMMON,
    kinds={"python", "duckdb"},
    code_version="1",
    check_specs=[dg.AssetCheckSpec("lines_parse", asset=key(SYSTEM, "raw_reviews"))],
)
def raw_reviews(context: dg.AssetExecutionContext, data_source: DataSource):
    """Users' reviews, one row per review (the file holds one Python-literal dict per user)."""
    fetched = data_source.fetch(REVIEWS_FILE)
    frame, report = ingest.read_reviews(fetched.path)
    yield _parse_check("raw_reviews", report, REVIEWS_FILE.relative_path)
    yield dg.Output(
        frame,
        metadata={**fetched.metadata(), **_parse_metadata(report), **table_metadata(frame)},
        data_version=fetched.data_version,
    )


class UsersItemsConfig(dg.Config):
    generator_scale: float = 1.0  # share of the real users generated when the real file is unavailable
    generator_seed: int = 42


@dg.asset(
    **COMMON,
    kinds={"python", "duckdb"},
    code_version="1",
    check_specs=[
        dg.AssetCheckSpec("lines_parse", asset=key(SYSTEM, "raw_user_items")),
        dg.AssetCheckSpec("item_rows_match_items_count", asset=key(SYSTEM, "raw_user_items")),
    ],
)
def raw_user_items(
    context: dg.AssetExecutionContext,
    config: UsersItemsConfig,
    data_source: DataSource,
    object_store: ObjectStore,
    raw_games,
    raw_reviews,
):
    """Every game in every user's library, one row per (user, item), from the real file when available.

    Otherwise from the generator fitted to the real users, games and reviews (metadata source = generated).
    """
    import pandas as pd

    with tempfile.TemporaryDirectory() as scratch:
        try:
            fetched = data_source.fetch(USERS_ITEMS_FILE)
            path, source = fetched.path, {"source": "real", **fetched.metadata()}
        except DatasetUnavailable as missing:
            context.log.warning(f"{missing} Generating a stand-in fitted to the real users and games.")
            path = Path(scratch) / "users_items.json.gz"
            users = pd.read_parquet(data_source.fetch(USERS_FILE).path)
            extract = pd.read_parquet(data_source.fetch(ITEMS_EXTRACT_FILE).path)
            games = etl.game_catalogue(raw_games)
            generated = generate_users_items(
                path,
                users,
                games,
                extract,
                raw_reviews["item_id"],
                scale=config.generator_scale,
                seed=config.generator_seed,
            )
            object_store.put_bytes(GENERATED_ITEMS_KEY, path.read_bytes(), "application/gzip")
            source = {
                "source": "generated",
                "generator_scale": float(generated.scale),
                "generator_seed": generated.seed,
                "generated_users": generated.users,
                "generated_file": dg.MetadataValue.path(object_store.uri(GENERATED_ITEMS_KEY)),
            }
        frame, report = ingest.read_user_items(path)
    yield _parse_check("raw_user_items", report, USERS_ITEMS_FILE.relative_path)
    declared = int(frame.groupby("line")["items_count"].first().sum()) if len(frame) else 0
    yield dg.AssetCheckResult(
        check_name="item_rows_match_items_count",
        passed=declared == len(frame),
        metadata={"rows": len(frame), "sum_items_count": declared},
    )
    yield dg.Output(
        frame,
        metadata={
            **source,
            **_parse_metadata(report),
            **table_metadata(frame),
            "users": int(frame["user_id"].nunique()),
        },
    )


@dg.asset(
    **COMMON,
    kinds={"python", "duckdb"},
    code_version="1",
    check_specs=[dg.AssetCheckSpec("golden_sentiment_2015", asset=key(SYSTEM, "reviews"), blocking=True)],
)
def reviews(raw_reviews):
    """Reviews with date, review year (year-less 'Posted July 10.' -> 2020) and sentiment 0/1/2 (TextBlob)."""
    frame = etl.clean_reviews(raw_reviews)
    year = frame[frame["year"] == GOLDEN_SENTIMENT_YEAR]["sentiment"].value_counts()
    observed = {"negative": int(year.get(0, 0)), "neutral": int(year.get(1, 0)), "positive": int(year.get(2, 0))}
    real = len(frame) == REAL_REVIEW_ROWS
    yield dg.AssetCheckResult(
        check_name="golden_sentiment_2015",
        passed=(observed == GOLDEN_SENTIMENT) if real else True,
        description=None if real else "not the real reviews file: golden value not applicable",
        metadata={
            **{f"observed_{k}": v for k, v in observed.items()},
            **{f"golden_{k}": v for k, v in GOLDEN_SENTIMENT.items()},
        },
    )
    shares = frame["sentiment"].value_counts(normalize=True)
    yield dg.Output(
        frame,
        metadata={
            **table_metadata(frame),
            "negative_share": float(shares.get(0, 0.0)),
            "neutral_share": float(shares.get(1, 0.0)),
            "positive_share": float(shares.get(2, 0.0)),
        },
    )


@dg.asset(**COMMON, kinds={"python", "duckdb"}, code_version="1")
def games(raw_games, reviews) -> dg.Output:
    """The game catalogue: one row per id, tags&genres, numeric price, release date always filled."""
    frame = etl.clean_games(raw_games, reviews)
    return dg.Output(
        frame,
        metadata={
            **table_metadata(frame),
            **{
                f"release_date_from_{k.replace(' ', '_')}": int(v)
                for k, v in frame["release_date_source"].value_counts().items()
            },
        },
    )


@dg.asset(**COMMON, kinds={"python", "duckdb"}, code_version="1")
def user_items(raw_user_items) -> dg.Output:
    """Games users actually played (playtime_forever > 0): what hours, genres and recommendations count."""
    frame = etl.clean_items(raw_user_items)
    return dg.Output(
        frame,
        metadata={
            **table_metadata(frame),
            "users": int(frame["user_id"].nunique()),
            "played_share": float(len(frame) / max(len(raw_user_items), 1)),
        },
    )
