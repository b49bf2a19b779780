import datetime as dt

import pandas as pd
import pytest

from mlops_assets.titanic.assets import holdout_accuracy, train_survival_model
from mlops_assets.titanic.constants import FEATURE_GROUP_COLUMNS, SURVIVOR_RANGES, SYNTHETIC_ID_BASE, VICTIM_RANGES
from mlops_assets.titanic.features import in_holdout, prepare_passengers, synthetic_passenger, upsert


def raw(**overrides):
    row = {
        "PassengerId": 1,
        "Survived": 0,
        "Pclass": 3,
        "Name": "A",
        "Sex": "male",
        "Age": 22.0,
        "SibSp": 1,
        "Parch": 0,
        "Ticket": "x",
        "Fare": 7.25,
        "Cabin": None,
        "Embarked": "S",
    }
    row.update(overrides)
    return row


def test_prepare_fills_gaps_and_encodes_like_the_original():
    frame = pd.DataFrame(
        [
            raw(PassengerId=1, Age=None, Embarked=None, Sex="female", Fare=12.5),
            raw(PassengerId=2, Age=7.5, Embarked="C", Fare=12.51),
            raw(PassengerId=3, Age=50.01, Embarked="Q", Fare=None),
            raw(PassengerId=4, Age=50.0, Embarked="S", Fare=151.0),
        ]
    )
    prepared = prepare_passengers(frame).set_index("passenger_id")
    assert list(prepared.reset_index().columns) == FEATURE_GROUP_COLUMNS
    assert prepared.loc[1, "age_encoded"] == 3  # missing age -> 29 -> band 25-30
    assert prepared.loc[1, "embarked_encoded"] == 2  # missing port -> Q
    assert prepared.loc[1, "sex_encoded"] == 1 and prepared.loc[2, "sex_encoded"] == 0
    assert prepared.loc[2, "embarked_encoded"] == 1  # C
    assert prepared.loc[2, "age_encoded"] == 0  # 7.5 is inside the first band (edges inclusive)
    assert prepared.loc[4, "age_encoded"] == 5 and prepared.loc[3, "age_encoded"] == 6
    assert prepared.loc[1, "fare_encoded"] == 0 and prepared.loc[2, "fare_encoded"] == 1
    assert prepared.loc[4, "fare_encoded"] == 6
    # Missing fare -> mean of the others: (12.5 + 12.51 + 151) / 3 = 58.67 -> band 50-75
    assert prepared.loc[3, "fare_encoded"] == 3


def test_synthetic_passenger_is_deterministic_in_range_and_never_a_real_id():
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(200)]
    rows = [synthetic_passenger(day) for day in days]
    assert rows[10] == synthetic_passenger(days[10])
    ids = [row["passenger_id"] for row in rows]
    assert len(set(ids)) == len(ids) and min(ids) > SYNTHETIC_ID_BASE
    survivors = sum(row["survived"] for row in rows)
    assert 70 < survivors < 130  # about half
    for row in rows:
        ranges = SURVIVOR_RANGES if row["survived"] else VICTIM_RANGES
        for column, (low, high) in ranges.items():
            assert low <= row[column] <= high, (column, row)


def test_upsert_replaces_rows_with_the_same_key():
    existing = pd.DataFrame({"passenger_id": [1, 2], "survived": [0, 0]})
    incoming = pd.DataFrame({"passenger_id": [2, 3], "survived": [1, 1]})
    merged = upsert(existing, incoming)
    assert merged["passenger_id"].tolist() == [1, 2, 3]
    assert merged["survived"].tolist() == [0, 1, 1]


def test_holdout_membership_is_stable_as_the_group_grows():
    small = in_holdout(pd.Series(range(1, 500)))
    large = in_holdout(pd.Series(range(1, 5000)))
    assert small.tolist() == large.iloc[:499].tolist()
    assert 0.15 < large.mean() < 0.25


@pytest.mark.realdata
def test_accuracy_on_the_real_passengers_meets_the_original(data_dir):
    features = prepare_passengers(pd.read_csv(data_dir / "titanic" / "train.csv")).assign(source="kaggle")
    split = features.assign(split=in_holdout(features["passenger_id"]).map({True: "holdout", False: "train"}))
    model = train_survival_model(split)
    assert "passenger_id" not in model.feature_names_in_
    assert holdout_accuracy(model, split) >= 0.80
