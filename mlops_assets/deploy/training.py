"""The two demo models, each a scikit-learn Pipeline on raw columns (what a user would upload).

- `titanic_kaggle`: trained on the real Kaggle Titanic train.csv, raw columns only.
- `paris_airbnb_generated`: the original project's Paris Airbnb price example. Its training data is not public,
  so the regressor is fitted on generated listings (a made-up price rule plus noise) and says so everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from resources.data_source import DatasetFile

if TYPE_CHECKING:
    import pandas as pd

if TYPE_CHECKING:  # scikit-learn is imported by the functions that train (not when the code location loads)
    from sklearn.pipeline import Pipeline

TITANIC_TRAIN = DatasetFile(
    relative_path="titanic/train.csv",
    url="https://raw.githubusercontent.com/vances678/jspears23_titanic/9ecf3f4d1a1c7e919c4321f5e1382103f71cdb96/titanic/train.csv",
    sha256="7d118fef8b6ccf7f81111877bc388536f7b1e498a655e3d649d19aaa010e9f6f",
)
TITANIC_CATEGORICAL = ["Pclass", "Sex", "Embarked"]
TITANIC_NUMERIC = ["Age", "SibSp", "Parch", "Fare"]

PARIS_NEIGHBOURHOOD_PREMIUM = {
    "Louvre": 1.55,
    "Bourse": 1.35,
    "Temple": 1.4,
    "Hôtel-de-Ville": 1.45,
    "Panthéon": 1.35,
    "Luxembourg": 1.6,
    "Palais-Bourbon": 1.55,
    "Élysée": 1.75,
    "Opéra": 1.3,
    "Entrepôt": 1.1,
    "Popincourt": 1.05,
    "Reuilly": 0.95,
    "Gobelins": 0.9,
    "Observatoire": 1.0,
    "Vaugirard": 1.0,
    "Passy": 1.4,
    "Batignolles-Monceau": 1.05,
    "Buttes-Montmartre": 0.95,
    "Buttes-Chaumont": 0.85,
    "Ménilmontant": 0.85,
}
PARIS_ROOM_FACTOR = {"Entire home/apt": 1.0, "Private room": 0.6, "Shared room": 0.35, "Hotel room": 0.9}
PARIS_COLUMNS = [
    "neighbourhood",
    "room_type",
    "minimum_nights",
    "mois",
    "voyageurs",
    "chambres",
    "lits",
    "salle_de_bains",
]


@dataclass
class TrainedModel:
    pipeline: Pipeline
    metrics: dict[str, float]
    rows: int
    data_note: str
    source_metadata: dict = field(default_factory=dict)


def _one_hot() -> Pipeline:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    return Pipeline(
        [("impute", SimpleImputer(strategy="most_frequent")), ("encode", OneHotEncoder(handle_unknown="ignore"))]
    )


def titanic_pipeline() -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    features = ColumnTransformer(
        [
            ("categorical", _one_hot(), TITANIC_CATEGORICAL),
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                TITANIC_NUMERIC,
            ),
        ]
    )
    return Pipeline([("features", features), ("model", LogisticRegression(max_iter=1000))])


def train_titanic(raw: pd.DataFrame) -> TrainedModel:
    """Fit on the raw Kaggle columns the form collects; accuracy by 5-fold cross-validation."""
    from sklearn.model_selection import cross_val_score

    columns = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
    X = raw[columns].copy()
    X[["Pclass", "Age", "SibSp", "Parch", "Fare"]] = X[["Pclass", "Age", "SibSp", "Parch", "Fare"]].astype(float)
    y = raw["Survived"].astype(int)
    pipeline = titanic_pipeline()
    accuracy = cross_val_score(pipeline, X, y, cv=5, scoring="accuracy")
    pipeline.fit(X, y)
    metrics = {
        "cv_accuracy": float(accuracy.mean()),
        "cv_accuracy_std": float(accuracy.std()),
        "survival_rate": float(y.mean()),
    }
    return TrainedModel(pipeline, metrics, len(X), "Kaggle Titanic train.csv (real data)")


def generate_paris_listings(rows: int = 3000, seed: int = 7) -> pd.DataFrame:
    """Generated Paris listings whose price follows a made-up rule; NOT real Airbnb data."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    neighbourhoods = list(PARIS_NEIGHBOURHOOD_PREMIUM)
    rooms = list(PARIS_ROOM_FACTOR)
    frame = pd.DataFrame(
        {
            "neighbourhood": rng.choice(neighbourhoods, rows),
            "room_type": rng.choice(rooms, rows, p=[0.75, 0.18, 0.02, 0.05]),
            "minimum_nights": np.log1p(rng.integers(1, 30, rows)).round(3),
            "mois": rng.integers(1, 13, rows),
            "voyageurs": rng.integers(1, 9, rows).astype(float),
        }
    )
    frame["chambres"] = np.clip(np.ceil(frame["voyageurs"] / 2) - rng.integers(0, 2, rows), 0, None).astype(float)
    frame["lits"] = np.clip(frame["chambres"] + rng.integers(0, 2, rows), 1, None).astype(float)
    frame["salle_de_bains"] = np.clip(np.round(frame["chambres"] / 2), 1, None).astype(float)
    summer = np.where(frame["mois"].isin([6, 7, 8, 9]), 1.2, 1.0)
    price = (
        (
            45
            + 28 * frame["voyageurs"]
            + 20 * frame["chambres"]
            + 12 * frame["salle_de_bains"]
            - 6 * frame["minimum_nights"]
        )
        * frame["neighbourhood"].map(PARIS_NEIGHBOURHOOD_PREMIUM)
        * frame["room_type"].map(PARIS_ROOM_FACTOR)
        * summer
    )
    frame["price"] = (price * rng.lognormal(0, 0.12, rows)).round(2)
    return frame


def paris_pipeline() -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    features = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ["neighbourhood", "room_type"],
            ),
        ],
        remainder="passthrough",
    )
    return Pipeline(
        [
            ("features", features),
            ("model", HistGradientBoostingRegressor(max_iter=150, learning_rate=0.1, random_state=0)),
        ]
    )


def train_paris(rows: int = 3000, seed: int = 7) -> TrainedModel:
    from sklearn.metrics import mean_absolute_error, r2_score
    from sklearn.model_selection import train_test_split

    data = generate_paris_listings(rows, seed)
    X, y = data[PARIS_COLUMNS], data["price"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=seed)
    pipeline = paris_pipeline().fit(X_train, y_train)
    predicted = pipeline.predict(X_test)
    metrics = {
        "r2_generated_holdout": float(r2_score(y_test, predicted)),
        "mae_generated_holdout": float(mean_absolute_error(y_test, predicted)),
    }
    pipeline.fit(X, y)
    return TrainedModel(
        pipeline, metrics, rows, "GENERATED listings (the original's data is not public)", {"generator_seed": seed}
    )
