"""The dashboard's pictures, drawn with matplotlib (the original used stock photos of survivors and victims)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_assets.common.images import figure_png, pyplot

if TYPE_CHECKING:
    import pandas as pd

FATE_STYLE = {1: ("Survived", "#2f9e44"), 0: ("Did not survive", "#c92a2a")}


def fate_picture(survived: int, caption: str) -> bytes:
    """A passenger silhouette coloured by fate, with the fate and a caption written under it."""
    from matplotlib.patches import Circle, FancyBboxPatch

    text, colour = FATE_STYLE[int(survived)]
    fig, ax = pyplot().subplots(figsize=(3.2, 3.6))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.15)
    ax.axis("off")
    ax.add_patch(Circle((0.5, 0.78), 0.14, color=colour))
    ax.add_patch(FancyBboxPatch((0.28, 0.3), 0.44, 0.3, boxstyle="round,pad=0.04", color=colour))
    ax.text(0.5, 0.14, text, ha="center", va="center", fontsize=16, fontweight="bold", color=colour)
    ax.text(0.5, 0.02, caption, ha="center", va="center", fontsize=9, color="#52606d")
    return figure_png(fig)


def table_picture(frame: pd.DataFrame, title: str) -> bytes:
    fig, ax = pyplot().subplots(figsize=(7.5, 0.5 + 0.38 * (len(frame) + 1)))
    ax.axis("off")
    ax.set_title(title, fontsize=11, loc="left")
    if frame.empty:
        ax.text(0.5, 0.5, "no predictions yet", ha="center", va="center", color="#52606d")
    else:
        table = ax.table(
            cellText=frame.astype(str).values, colLabels=list(frame.columns), loc="center", cellLoc="center"
        )
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        table.scale(1, 1.3)
    return figure_png(fig)


def confusion_picture(matrix, labels: list[str], title: str) -> bytes:
    """Rows are the actual fate, columns the predicted fate (the original had them swapped)."""
    fig, ax = pyplot().subplots(figsize=(4.2, 3.8))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels=[f"predicted\n{label}" for label in labels])
    ax.set_yticks(range(len(labels)), labels=[f"actual\n{label}" for label in labels])
    top = matrix.max() if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                color="white" if matrix[i, j] > top / 2 else "black",
                fontsize=14,
            )
    ax.set_title(title, fontsize=11)
    return figure_png(fig)
