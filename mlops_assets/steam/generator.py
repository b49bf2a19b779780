"""A full-scale stand-in for `users_items.json.gz`, whose item lists are not public anywhere we can read.

Real users (every record of `users_items_users.parquet`, with its real items_count) own items drawn from the
real games: popularity from the real item-level extract and the real reviews, playtime log-normal per game fitted
to the extract, 36.25 % never played (the original's 3,285,246 played of 5,153,209 rows), and a taste signal
(half of each user's items come from one favourite genre) so that recommenders have something to find. Written
in the original's Python-literal format, deterministic for a seed, vectorized with numpy per chunk of users.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


UNPLAYED_SHARE = 1 - 3_285_246 / 5_153_209
FAVOURITE_GENRE_SHARE = 0.5
POPULARITY_FLOOR = 0.02  # every real game can be owned, the long tail rarely
USERS_PER_CHUNK = 5_000


@dataclass(frozen=True)
class GeneratedFile:
    path: Path
    users: int
    item_rows: int
    played_rows: int
    scale: float
    seed: int


@dataclass(frozen=True)
class _Catalogue:
    item_line_prefix: list[str]  # "{'item_id': '10', 'item_name': 'Counter-Strike', 'playtime_forever': "
    global_cdf: np.ndarray
    genre_cdfs: list[np.ndarray]
    genre_weights: np.ndarray
    log_mean: np.ndarray  # per game mean of log(playtime_forever) among players
    log_std: float
    two_weeks_share: float
    two_weeks_log_mean: float
    two_weeks_log_std: float


def _cdf(weights: np.ndarray) -> np.ndarray:
    import numpy as np

    cdf = np.cumsum(weights, dtype=float)
    return cdf / cdf[-1]


def fit_catalogue(games: pd.DataFrame, extract: pd.DataFrame, review_item_ids: pd.Series) -> _Catalogue:
    """games: item_id, name, genres; extract: item_id, playtime_forever, playtime_2weeks (the real 136k rows)."""
    import numpy as np
    import pandas as pd

    item_ids = games["item_id"].astype(str).to_numpy()
    extract = extract.assign(item_id=extract["item_id"].astype(str))
    players = extract.groupby("item_id").size()
    reviews = review_item_ids.astype(str).value_counts()
    weight = (pd.Series(item_ids).map(players).fillna(0) + pd.Series(item_ids).map(reviews).fillna(0)).to_numpy()
    weight = weight + POPULARITY_FLOOR

    log_play = np.log(extract["playtime_forever"].clip(lower=1).astype(float))
    global_mean, log_std = float(log_play.mean()), float(log_play.std())
    per_game = log_play.groupby(extract["item_id"]).agg(["mean", "count"])
    # Shrink each game's mean toward the global one: games with few players in the extract are noisy.
    shrunk = (per_game["mean"] * per_game["count"] + global_mean * 5) / (per_game["count"] + 5)
    log_mean = pd.Series(item_ids).map(shrunk).fillna(global_mean).to_numpy()

    genre_lists = [list(g) if g is not None else [] for g in games["genres"]]
    genre_names = sorted({g for gs in genre_lists for g in gs})
    genre_cdfs, genre_weights = [], []
    for genre in genre_names:
        member = np.array([genre in gs for gs in genre_lists])
        genre_cdfs.append(_cdf(np.where(member, weight, 0.0)))
        genre_weights.append(weight[member].sum())

    two_weeks = extract["playtime_2weeks"].astype(float)
    active = np.log(two_weeks[two_weeks > 0])
    prefixes = [
        f"{{'item_id': {item!r}, 'item_name': {name!r}, 'playtime_forever': "
        for item, name in zip(item_ids, games["name"].astype(str), strict=False)
    ]
    return _Catalogue(
        prefixes,
        _cdf(weight),
        genre_cdfs,
        _cdf(np.asarray(genre_weights)),
        log_mean,
        log_std,
        float((two_weeks > 0).mean()),
        float(np.nan_to_num(active.mean())),
        float(np.nan_to_num(active.std())),
    )


def _draw(cdf: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    import numpy as np

    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def _sample_items(counts: np.ndarray, cat: _Catalogue, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(owner index, game index) pairs, distinct per owner, exactly counts[u] per owner."""
    import numpy as np

    n_games = len(cat.global_cdf)
    owners = np.repeat(np.arange(len(counts)), counts)
    favourite = _draw(cat.genre_weights, rng, len(counts))
    games = _draw(cat.global_cdf, rng, len(owners))
    from_genre = rng.random(len(owners)) < FAVOURITE_GENRE_SHARE
    for genre, cdf in enumerate(cat.genre_cdfs):
        slots = np.flatnonzero(from_genre & (favourite[owners] == genre))
        games[slots] = _draw(cdf, rng, len(slots))
    for attempt in range(50):
        order = np.lexsort((games, owners))
        owners, games = owners[order], games[order]
        repeated = np.flatnonzero((owners[1:] == owners[:-1]) & (games[1:] == games[:-1])) + 1
        if repeated.size == 0:
            break
        # Heavy owners exhaust the popular games: after a few popularity redraws, fall back to uniform ones.
        games[repeated] = (
            _draw(cat.global_cdf, rng, repeated.size) if attempt < 5 else rng.integers(0, n_games, repeated.size)
        )
    return owners, games


def _playtimes(games: np.ndarray, cat: _Catalogue, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    forever = np.exp(rng.normal(cat.log_mean[games], cat.log_std)).round().astype(np.int64).clip(min=1)
    forever[rng.random(len(games)) < UNPLAYED_SHARE] = 0
    recent = np.exp(rng.normal(cat.two_weeks_log_mean, cat.two_weeks_log_std, len(games))).round().astype(np.int64)
    recent = np.where((rng.random(len(games)) < cat.two_weeks_share) & (forever > 0), np.minimum(recent, forever), 0)
    return forever, recent


def generate_users_items(
    path: Path,
    users: pd.DataFrame,
    games: pd.DataFrame,
    extract: pd.DataFrame,
    review_item_ids: pd.Series,
    scale: float = 1.0,
    seed: int = 42,
    compresslevel: int = 1,
) -> GeneratedFile:
    """Write the gzip file; `scale` keeps that share of the real users (1.0 = all 88,310, 5,153,209 rows)."""
    import numpy as np

    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    cat = fit_catalogue(games, extract, review_item_ids)
    keep = np.random.default_rng(seed).random(len(users)) < scale if scale < 1 else np.ones(len(users), bool)
    chosen = users.loc[keep, ["user_id", "items_count", "steam_id", "user_url"]].reset_index(drop=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    item_rows = played_rows = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=compresslevel) as out:
        for chunk_number, start in enumerate(range(0, len(chosen), USERS_PER_CHUNK)):
            chunk = chosen.iloc[start : start + USERS_PER_CHUNK]
            rng = np.random.default_rng([seed, chunk_number])
            counts = chunk["items_count"].to_numpy(dtype=np.int64)
            _owners, game_idx = _sample_items(counts, cat, rng)
            forever, recent = _playtimes(game_idx, cat, rng)
            prefix = cat.item_line_prefix
            rendered = [
                f"{prefix[g]}{f}, 'playtime_2weeks': {r}}}"
                for g, f, r in zip(game_idx.tolist(), forever.tolist(), recent.tolist(), strict=False)
            ]
            bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
            lines = [
                f"{{'user_id': {u!r}, 'items_count': {c}, 'steam_id': {s!r}, 'user_url': {url!r}, "
                f"'items': [{', '.join(rendered[bounds[i] : bounds[i + 1]])}]}}\n"
                for i, (u, c, s, url) in enumerate(chunk.itertuples(index=False, name=None))
            ]
            out.writelines(lines)
            item_rows += len(game_idx)
            played_rows += int((forever > 0).sum())
    return GeneratedFile(path, len(chosen), item_rows, played_rows, scale, seed)
