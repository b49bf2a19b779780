"""The serving side of the Titanic form without a server: the form's words encode as the training pipeline
encodes raw passengers, and the answer table holds the model's own prediction for every one of the 882 inputs."""

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier

from mlops_assets.titanic.constants import AGE_BANDS, FARE_BANDS, FEATURES, PORT_NAMES
from mlops_assets.titanic.features import prepare_passengers
from serving.titanic import DomainTable, Passenger

FORM = list(itertools.product(AGE_BANDS, PORT_NAMES, ("male", "female"), FARE_BANDS, (1, 2, 3)))


def representative(band: str) -> float:
    """A raw value inside a form band ("25-30" -> 27.5, "50+" -> 75)."""
    low, _, high = band.rstrip("+").partition("-")
    return (float(low) + float(high)) / 2 if high else float(low) * 1.5


@pytest.fixture(scope="module")
def encoded_by_training() -> pd.DataFrame:
    raw = pd.DataFrame(
        [
            {
                "PassengerId": i,
                "Survived": 0,
                "Pclass": pclass,
                "Sex": sex,
                "Age": representative(age),
                "Fare": representative(fare),
                "Embarked": port[0],
            }
            for i, (age, port, sex, fare, pclass) in enumerate(FORM)
        ]
    )
    return prepare_passengers(raw)[FEATURES]


def test_every_form_input_encodes_as_the_training_pipeline_encodes_it(encoded_by_training):
    assert len(FORM) == 882
    rows = encoded_by_training.to_dict(orient="records")
    for i, (age, port, sex, fare, pclass) in enumerate(FORM):
        passenger = Passenger(age_band=age, port=port, sex=sex, fare_band=fare, pclass=pclass)
        assert passenger.encoded() == rows[i], FORM[i]


def test_the_table_answers_the_models_own_prediction_for_every_input(encoded_by_training):
    rng = np.random.default_rng(3)
    train = encoded_by_training.sample(400, random_state=3)
    labels = ((train["sex_encoded"] == 1) ^ (rng.random(len(train)) < 0.2)).astype(int)
    model = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0).fit(train, labels)
    table = DomainTable(model)
    fates = model.predict(encoded_by_training)
    p_survived = model.predict_proba(encoded_by_training)[:, list(model.classes_).index(1)]
    assert 0 < fates.sum() < len(fates)
    assert len(table.answers) == 882
    for i, row in enumerate(encoded_by_training.to_dict(orient="records")):
        label, probability = table.answer(row)
        assert (label, probability) == (int(fates[i]), pytest.approx(float(p_survived[i]))), FORM[i]


def test_a_model_that_never_saw_a_survivor_answers_zero_probability(encoded_by_training):
    model = DummyClassifier(strategy="most_frequent").fit(encoded_by_training.head(10), [0] * 10)
    table = DomainTable(model)
    assert set(table.answers.values()) == {(0, 0.0)}
