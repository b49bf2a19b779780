"""Titanic assets called directly on small frames."""

import dagster as dg
import pandas as pd

from mlops_assets.titanic.assets import daily_passenger, feature_group, passenger_features, training_split
from mlops_assets.titanic.features import synthetic_passenger
from mlops_assets.titanic.predictions import confusion_matrix_image, join_labels, recent_rows
from resources.object_store import LocalObjectStore
from tests.titanic.test_features import raw


def test_features_then_upsert_of_daily_passengers():
    features = passenger_features(pd.DataFrame([raw(PassengerId=1), raw(PassengerId=2, Sex="female")])).value
    day = daily_passenger(dg.build_asset_context(partition_key="2026-02-01")).value
    assert day["passenger_id"].iloc[0] == synthetic_passenger(pd.Timestamp("2026-02-01").date())["passenger_id"]
    again = pd.concat([day, day])  # a re-materialized partition must not duplicate the passenger
    group = feature_group(features, again)
    assert group.value["passenger_id"].is_unique and len(group.value) == 3
    assert group.metadata["synthetic_rows"].value == 1
    split = training_split(group.value).value
    assert set(split["split"]) <= {"train", "holdout"}


def history(predictions, labels):
    n = len(predictions)
    return pd.DataFrame(
        {
            "event_date": pd.date_range("2026-02-01", periods=n),
            "predicted_at": pd.Timestamp("2026-03-01"),
            "passenger_id": range(n),
            "prediction": predictions,
            "label": labels,
            "model_version": "1",
        }
    )


def test_confusion_matrix_waits_for_both_fates(tmp_path):
    store = LocalObjectStore(root=str(tmp_path))
    context = dg.build_asset_context()
    assert list(confusion_matrix_image(context, history([1, 1], [0, 1]), store)) == []
    assert not store.exists("titanic/confusion_matrix.png")
    [result] = list(confusion_matrix_image(context, history([1, 0, 0], [1, 0, 1]), store))
    assert store.get_bytes("titanic/confusion_matrix.png").startswith(b"\x89PNG")
    assert result.metadata["history_accuracy"].value == 2 / 3


def test_recent_rows_are_the_last_five_newest_first():
    recent = recent_rows(history([0, 1, 0, 1, 0, 1, 1], [0, 1, 1, 1, 0, 0, 1]))
    assert recent["date"].tolist() == [f"2026-02-0{d}" for d in (7, 6, 5, 4, 3)]
    assert recent["prediction"].iloc[0] == "survived"


def test_history_joins_labels_that_may_arrive_later():
    predictions = history([1, 0], [0, 0]).drop(columns=["label"])
    group = pd.DataFrame({"passenger_id": [0], "survived": [1]})  # passenger 1's label is not known yet
    joined = join_labels(predictions, group)
    assert joined["label"].tolist()[0] == 1 and pd.isna(joined["label"].tolist()[1])
    assert recent_rows(joined)["label"].tolist() == ["unknown yet", "survived"]
