"""Data-quality checks of the Titanic tables; a failure names the file (or table) and the offending rows."""

from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common.keys import key
from mlops_assets.titanic.constants import EMBARKED_CODES, FEATURE_GROUP_COLUMNS, SEX_CODES, SYSTEM, TRAIN_CSV_PATH
from mlops_assets.titanic.features import RAW_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

MAX_LISTED = 10


def _describe_rows(rows: "pd.Index", offset: int = 2) -> str:
    # +2: the CSV header is line 1 and pandas counts from 0, so users can open the file at the reported line.
    lines = [str(int(i) + offset) for i in list(rows)[:MAX_LISTED]]
    more = f" and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else ""
    return ", ".join(lines) + more


def problems_result(problems: list[str], rows: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={
            "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
            "rows": dg.MetadataValue.int(rows),
        },
    )


def raw_problems(frame: "pd.DataFrame") -> list[str]:
    import pandas as pd

    missing = [c for c in RAW_COLUMNS if c not in frame.columns]
    if missing:
        return [f"{TRAIN_CSV_PATH}: missing columns {missing}"]
    problems = []
    rules = {
        "PassengerId duplicated": frame["PassengerId"].duplicated(keep=False),
        "PassengerId missing": frame["PassengerId"].isna(),
        "Survived not 0/1": ~frame["Survived"].isin([0, 1]),
        "Pclass not 1/2/3": ~frame["Pclass"].isin([1, 2, 3]),
        "Sex not male/female": ~frame["Sex"].isin(list(SEX_CODES)),
        "Embarked not S/C/Q": frame["Embarked"].notna() & ~frame["Embarked"].isin(list(EMBARKED_CODES)),
        "Age negative": frame["Age"].notna() & (pd.to_numeric(frame["Age"], errors="coerce") < 0),
        "Fare negative": frame["Fare"].notna() & (pd.to_numeric(frame["Fare"], errors="coerce") < 0),
    }
    for rule, bad in rules.items():
        if bad.any():
            problems.append(f"{TRAIN_CSV_PATH}: {rule} at line(s) {_describe_rows(frame.index[bad])}")
    return problems


@dg.asset_check(
    asset=key(SYSTEM, "raw_passengers"),
    blocking=True,
    description="Columns present, ids unique, categorical values known, ages and fares not negative",
)
def raw_passengers_valid(raw_passengers) -> dg.AssetCheckResult:
    return problems_result(raw_problems(raw_passengers), len(raw_passengers))


def feature_group_problems(group: "pd.DataFrame") -> list[str]:
    problems = []
    if list(group.columns[: len(FEATURE_GROUP_COLUMNS)]) != FEATURE_GROUP_COLUMNS:
        problems.append(f"columns {list(group.columns)} do not start with {FEATURE_GROUP_COLUMNS}")
        return problems
    duplicated = group["passenger_id"].duplicated(keep=False)
    if duplicated.any():
        ids = group.loc[duplicated, "passenger_id"].unique()[:MAX_LISTED].tolist()
        problems.append(f"primary key passenger_id not unique: {ids}")
    ranges = {
        "survived": (0, 1),
        "pclass": (1, 3),
        "sex_encoded": (0, 1),
        "embarked_encoded": (0, 2),
        "age_encoded": (0, 6),
        "fare_encoded": (0, 6),
    }
    for column, (low, high) in ranges.items():
        bad = group[column].isna() | ~group[column].between(low, high)
        if bad.any():
            ids = group.loc[bad, "passenger_id"].head(MAX_LISTED).tolist()
            problems.append(f"{column} outside {low}..{high} for passenger_id {ids}")
    return problems


@dg.asset_check(
    asset=key(SYSTEM, "feature_group"),
    blocking=True,
    description="passenger_id is a primary key and every encoded feature is in its range",
)
def feature_group_valid(feature_group) -> dg.AssetCheckResult:
    return problems_result(feature_group_problems(feature_group), len(feature_group))
