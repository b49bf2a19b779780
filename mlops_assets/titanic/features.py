"""Pure feature logic of the Titanic system: cleaning, encoding, synthetic passengers, the holdout."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING

from mlops_assets.titanic.constants import (
    AGE_EDGES,
    EMBARKED_CODES,
    FARE_EDGES,
    FEATURE_GROUP_COLUMNS,
    HOLDOUT_PERCENT,
    HOLDOUT_SALT,
    MISSING_AGE,
    MISSING_EMBARKED,
    SEX_CODES,
    SURVIVOR_RANGES,
    SYNTHETIC_ID_BASE,
    VICTIM_RANGES,
)

if TYPE_CHECKING:
    import pandas as pd

RAW_COLUMNS = ["PassengerId", "Survived", "Pclass", "Sex", "Age", "Fare", "Embarked"]


def band(values: pd.Series, edges: tuple[float, ...]) -> pd.Series:
    """Index of the first edge a value does not exceed (edges inclusive); values above all edges get len(edges)."""
    import numpy as np
    import pandas as pd

    return pd.Series(
        np.searchsorted(np.asarray(edges), values.to_numpy(dtype=float), side="left"), index=values.index, dtype="int64"
    )


def prepare_passengers(raw: pd.DataFrame) -> pd.DataFrame:
    """The original's dataset_changes: fill gaps, encode sex/port, band age and fare."""
    import pandas as pd

    frame = raw[RAW_COLUMNS].copy()
    frame["Embarked"] = frame["Embarked"].fillna(MISSING_EMBARKED)
    frame["Age"] = frame["Age"].fillna(MISSING_AGE)
    frame["Fare"] = frame["Fare"].fillna(frame["Fare"].mean())
    prepared = pd.DataFrame(
        {
            "passenger_id": frame["PassengerId"].astype("int64"),
            "survived": frame["Survived"].astype("int64"),
            "pclass": frame["Pclass"].astype("int64"),
            "sex_encoded": frame["Sex"].map(SEX_CODES).astype("int64"),
            "embarked_encoded": frame["Embarked"].map(EMBARKED_CODES).astype("int64"),
            "age_encoded": band(frame["Age"], AGE_EDGES),
            "fare_encoded": band(frame["Fare"], FARE_EDGES),
        }
    )
    return prepared[FEATURE_GROUP_COLUMNS]


def synthetic_passenger_id(day: dt.date) -> int:
    return SYNTHETIC_ID_BASE + (day - dt.date(1970, 1, 1)).days


def synthetic_passenger(day: dt.date) -> dict[str, int]:
    """The original's daily passenger, but deterministic per date and with a fresh id that no real row has."""
    import numpy as np

    rng = np.random.default_rng(int(day.strftime("%Y%m%d")))
    survived = int(rng.integers(0, 2))
    ranges = SURVIVOR_RANGES if survived else VICTIM_RANGES
    row = {"passenger_id": synthetic_passenger_id(day), "survived": survived}
    for column, (low, high) in ranges.items():
        row[column] = int(rng.integers(low, high + 1))
    return {column: row[column] for column in FEATURE_GROUP_COLUMNS}


def upsert(existing: pd.DataFrame, incoming: pd.DataFrame, key: str = "passenger_id") -> pd.DataFrame:
    """Rows of `incoming` replace rows of `existing` with the same key; the result is ordered by key."""
    import pandas as pd

    merged = pd.concat([existing, incoming], ignore_index=True)
    merged = merged.drop_duplicates(subset=[key], keep="last")
    return merged.sort_values(key, kind="stable").reset_index(drop=True)


def in_holdout(passenger_ids: pd.Series) -> pd.Series:
    def bucket(passenger_id: int) -> int:
        return int(hashlib.sha256(f"{HOLDOUT_SALT}:{passenger_id}".encode()).hexdigest(), 16) % 100

    return passenger_ids.map(bucket) < HOLDOUT_PERCENT
