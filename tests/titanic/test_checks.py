import pandas as pd

from mlops_assets.titanic.checks import feature_group_problems, raw_problems
from mlops_assets.titanic.features import prepare_passengers
from tests.titanic.test_features import raw


def test_raw_check_names_the_file_and_line():
    frame = pd.DataFrame([raw(PassengerId=1), raw(PassengerId=2, Sex="robot"), raw(PassengerId=3, Survived=2)])
    problems = raw_problems(frame)
    assert any("titanic/train.csv" in p and "Sex" in p and "line(s) 3" in p for p in problems), problems
    assert any("Survived" in p and "line(s) 4" in p for p in problems), problems
    assert raw_problems(pd.DataFrame([raw(PassengerId=1), raw(PassengerId=2)])) == []


def test_raw_check_reports_missing_columns():
    assert "missing columns ['Sex']" in raw_problems(pd.DataFrame([raw()]).drop(columns=["Sex"]))[0]


def test_feature_group_check_enforces_primary_key_and_ranges():
    group = prepare_passengers(pd.DataFrame([raw(PassengerId=1), raw(PassengerId=2)]))
    assert feature_group_problems(group) == []
    broken = pd.concat([group, group.iloc[[0]].assign(age_encoded=9)], ignore_index=True)
    problems = feature_group_problems(broken)
    assert any("primary key" in p and "[1]" in p for p in problems)
    assert any("age_encoded outside 0..6" in p for p in problems)
