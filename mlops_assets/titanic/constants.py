"""Constants of the original Titanic system (SYSTEMS.md section 1), kept so its users recognise it."""

from __future__ import annotations

SYSTEM = "titanic"
MODEL_NAME = "titanic_modal"
EXPERIMENT = "titanic"

# Kaggle's train.csv: its path in a local copy folder, the public copy and its digest. Plain strings, so this
# contract stays Dagster-free (resources.data_source imports Dagster; the asset module builds the DatasetFile).
TRAIN_CSV_PATH = "titanic/train.csv"
TRAIN_CSV_URL = (
    "https://raw.githubusercontent.com/vances678/jspears23_titanic/"
    "9ecf3f4d1a1c7e919c4321f5e1382103f71cdb96/titanic/train.csv"
)
TRAIN_CSV_SHA256 = "7d118fef8b6ccf7f81111877bc388536f7b1e498a655e3d649d19aaa010e9f6f"

# Cleaning rules of the original's dataset_changes script.
MISSING_EMBARKED = "Q"
MISSING_AGE = 29.0

SEX_CODES = {"male": 0, "female": 1}
EMBARKED_CODES = {"S": 0, "C": 1, "Q": 2}
PORT_NAMES = {"Southampton": "S", "Cherbourg": "C", "Queenstown": "Q"}

# Upper edges (inclusive) of the age and fare bands; above the last edge is the last band.
AGE_EDGES = (7.5, 15, 25, 30, 35, 50)
FARE_EDGES = (12.5, 25, 50, 75, 100, 150)
AGE_BANDS = ("0-7.5", "7.5-15", "15-25", "25-30", "30-35", "35-50", "50+")
FARE_BANDS = ("0-12.5", "12.5-25", "25-50", "50-75", "75-100", "100-150", "150+")

FEATURES = ["pclass", "sex_encoded", "embarked_encoded", "age_encoded", "fare_encoded"]  # never passenger_id
LABEL = "survived"
FEATURE_GROUP_COLUMNS = ["passenger_id", LABEL, *FEATURES]

# Hyper-parameters of the original's training pipeline; random_state added for reproducible runs.
MODEL_PARAMS = {"min_samples_split": 6, "max_depth": 6, "random_state": 42}

# The holdout is a fixed 20% chosen by a hash of passenger_id: a passenger never moves between train and
# holdout as the feature group grows, so champion and candidate are compared on rows neither trained on.
HOLDOUT_SALT = "titanic-holdout"
HOLDOUT_PERCENT = 20

# Synthetic daily passengers: ids far above any real Kaggle id (max 1309), one per day, never reused.
SYNTHETIC_ID_BASE = 1_000_000
# Inclusive integer ranges of the original's daily feature pipeline.
SURVIVOR_RANGES = {
    "age_encoded": (0, 3),
    "sex_encoded": (0, 1),
    "embarked_encoded": (1, 2),
    "fare_encoded": (3, 6),
    "pclass": (2, 3),
}
VICTIM_RANGES = {
    "age_encoded": (3, 6),
    "sex_encoded": (0, 1),
    "embarked_encoded": (0, 1),
    "fare_encoded": (0, 3),
    "pclass": (1, 2),
}

PARTITIONS_START = "2026-01-01"

IMAGE_KEYS = {
    "latest_passenger": "titanic/latest_passenger.png",
    "actual_fate": "titanic/actual_fate.png",
    "df_recent": "titanic/df_recent.png",
    "confusion_matrix": "titanic/confusion_matrix.png",
}
RECENT_PREDICTIONS_KEY = "titanic/recent_predictions.json"
RECENT_ROWS = 5
