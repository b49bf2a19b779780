"""Scoring a classifier on labelled images: accuracy, per-class recall, threshold pass rate, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_assets.common.images import figure_png, pyplot
from mlops_assets.scones.constants import CLASS_NAMES

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Evaluation:
    labels: np.ndarray
    probabilities: np.ndarray
    threshold: float

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).mean())

    def recall(self, class_index: int) -> float:
        members = self.labels == class_index
        return float((self.predicted[members] == class_index).mean()) if members.any() else float("nan")

    @property
    def passed(self) -> np.ndarray:
        return self.probabilities.max(axis=1) >= self.threshold

    def matrix(self) -> np.ndarray:
        from sklearn.metrics import confusion_matrix

        return confusion_matrix(self.labels, self.predicted, labels=list(range(len(CLASS_NAMES))))

    def metrics(self) -> dict[str, float]:
        passed = self.passed
        return {
            "accuracy": self.accuracy,
            **{f"recall_{name}": self.recall(i) for i, name in enumerate(CLASS_NAMES)},
            # The workflow's filter drops inferences below the threshold: how many survive, and how right they are.
            "threshold_pass_rate": float(passed.mean()),
            "accuracy_when_passed": float((self.predicted[passed] == self.labels[passed]).mean())
            if passed.any()
            else float("nan"),
        }


def evaluate(model, images: np.ndarray, labels: np.ndarray, threshold: float) -> Evaluation:
    import numpy as np

    return Evaluation(np.asarray(labels), np.asarray(model.predict_proba(images)), threshold)


def confusion_matrix_png(evaluation: Evaluation) -> bytes:
    import numpy as np

    plt = pyplot()

    matrix = evaluation.matrix()
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    ax.set_xticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    ax.set_yticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"test accuracy {evaluation.accuracy:.3f} ({len(evaluation.labels)} images)")
    return figure_png(fig)
