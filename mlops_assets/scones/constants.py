"""Names and numbers of the Scones Unlimited system."""

SYSTEM = "scones"

# CIFAR-100 fine labels of the two classes and the class index the original project gave them.
CLASS_NAMES = ("bicycle", "motorcycle")
FINE_LABEL_TO_CLASS = {8: 0, 48: 1}
EXPECTED_COUNTS = {"train": 1000, "test": 200}

# Object-store layout (all under the system's own prefix so the systems never collide).
DATASET_PREFIX = "scones"  # scones/train/<file>.png and scones/train.lst, the original bucket layout
INCOMING_PREFIX = "scones/incoming/"
CHARTS_PREFIX = "scones/charts"

MODEL_NAME = "scones_classifier"
EXPERIMENT = "scones"

# The original workflow's filter: an inference passes when any class probability reaches it.
DEFAULT_THRESHOLD = 0.85
THRESHOLD_FAILURE = "THRESHOLD_CONFIDENCE_NOT_MET"

# The original SageMaker ResNet (30 epochs, GPU): validation accuracy at the end and at its best epoch.
ORIGINAL_FINAL_ACCURACY = 0.84375
ORIGINAL_BEST_ACCURACY = 0.875

CAPTURE_TABLE = "scones.inference_captures"
CHART_KEY = f"{CHARTS_PREFIX}/confidence_over_time.png"  # the monitoring asset writes it, serving shows it
