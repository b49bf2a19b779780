"""Names and constants of the Pistachio classifier, kept as the original project had them."""

from __future__ import annotations

SYSTEM = "pistachio"

# The original registered its model and named its MLflow experiment after the same string.
MODEL_NAME = "Pistachio_Classifier"
EXPERIMENT_NAME = "Pistachio_Classifier"

# Registered-version tags of the original, read back by the promotion rule.
VALIDATION_AUC_TAG = "Validation AUC"
TRAINING_DATAFILE_TAG = "Training Datafile"

# The real dataset: the Kaggle copy that the original's last weekly file was.
DATASET_RELATIVE_PATH = "pistachio/pistachio.csv"
DATASET_URL = (
    "https://raw.githubusercontent.com/carrionalfredo/Pistachio-Classifier/"
    "de957cfe9d2f3844d50b1b86af635dd7cd393798/data/pistachio_20230724.csv"
)

# Where weekly snapshot files land in the object store (a local folder or an S3 prefix); the sensor watches it.
INCOMING_PREFIX = "pistachio/incoming"
SNAPSHOT_SUFFIX = ".csv"

# The exported champion (the role of the original's model/Pistachio_Classifier_model.bin).
MODEL_FILE_KEY = "pistachio/model/Pistachio_Classifier_model.skops"
MODEL_MANIFEST_KEY = "pistachio/model/Pistachio_Classifier_model.json"

FEATURES: tuple[str, ...] = (
    "area",
    "perimeter",
    "major_axis",
    "minor_axis",
    "eccentricity",
    "eqdiasq",
    "solidity",
    "convex_area",
    "extent",
    "aspect_ratio",
    "roundness",
    "compactness",
    "shapefactor_1",
    "shapefactor_2",
    "shapefactor_3",
    "shapefactor_4",
)
TARGET = "class"
# Label encoding of the original: Kirmizi=0, Siit=1 ("Siit" is the dataset's own spelling).
CLASS_LABELS: tuple[str, str] = ("Kirmizi_Pistachio", "Siit_Pistachio")

# The original's weekly files: (file stem, rows of the Kaggle copy, whether it carried pandas' index column).
WEEKLY_FILES: tuple[tuple[str, int | None, bool], ...] = (
    ("pistachio_20230710", 900, True),
    ("pistachio_20230717", 1300, True),
    ("pistachio_20230724", None, False),
)

# The original's grid: C x max_iter x solver = 96 configurations (its misplaced return trained only C=1).
GRID_C: tuple[float, ...] = (1, 2, 4, 8)
GRID_MAX_ITER: tuple[int, ...] = (20, 50, 100, 200, 500, 1000)
GRID_SOLVER: tuple[str, ...] = ("lbfgs", "liblinear", "sag", "saga")
RANDOM_STATE = 1
