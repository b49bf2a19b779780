"""Realized performance: a model's metric on labels that arrived after it answered, over time, as a PNG chart."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common.images import figure_png, image_metadata, pyplot
from mlops_assets.common.log_format import summary_key
from mlops_assets.common.monitoring import PERFORMANCE_CHECK, warn_result, write_summary
from resources.monitoring import MonitoringSettings
from resources.object_store import ObjectStore

if TYPE_CHECKING:
    import pandas as pd


def chart_key(system: str, asset: str) -> str:
    return summary_key(system, asset, "png")


def performance_chart_png(
    history: pd.DataFrame, metrics: list[str], title: str, reference: dict[str, float] | None = None
) -> bytes:
    """`history`: one row per period (column `period`), one column per metric; dashed lines: the champion's
    own figures at training time."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.4))
    colors = ["#2680c2", "#d64545", "#3e7c17", "#7c5e10"]
    for color, metric in zip(colors, metrics, strict=False):
        if metric in history and history[metric].notna().any():
            ax.plot(history["period"].astype(str), history[metric], marker="o", color=color, label=metric)
        if reference and reference.get(metric) is not None and not math.isnan(reference[metric]):
            ax.axhline(
                reference[metric],
                color=color,
                linestyle="--",
                linewidth=1,
                label=f"{metric} at training {reference[metric]:.3f}",
            )
    ax.set_title(title if len(history) else f"{title}: no labelled predictions yet")
    ax.tick_params(axis="x", labelrotation=30)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize=8)
    return figure_png(fig)


def performance_check(
    metric: str, realized: float | None, expected: float | None, monitoring: MonitoringSettings
) -> dg.AssetCheckResult:
    """Warns when the latest realized figure falls more than the tolerance below the champion's own figure."""
    tolerance = monitoring.performance_drop_tolerance
    if realized is None or expected is None or math.isnan(realized) or math.isnan(expected):
        return warn_result(
            PERFORMANCE_CHECK, True, f"nothing to compare yet ({metric}: realized {realized}, at training {expected})"
        )
    floor = expected - tolerance
    return warn_result(
        PERFORMANCE_CHECK,
        realized >= floor,
        f"realized {metric} {realized:.3f} vs {expected:.3f} at training (floor {floor:.3f}, tolerance {tolerance})",
        realized=dg.MetadataValue.float(realized),
        expected=dg.MetadataValue.float(expected),
        floor=dg.MetadataValue.float(floor),
    )


def performance_output(
    context: dg.AssetExecutionContext,
    store: ObjectStore,
    system: str,
    asset: str,
    history: pd.DataFrame,
    metrics: list[str],
    title: str,
    check: dg.AssetCheckResult | None,
    reference: dict[str, float] | None = None,
    **extra_metadata,
) -> dg.MaterializeResult:
    """Draw the chart, store it and the overview's summary; the latest figures as float metadata."""
    png = performance_chart_png(history, metrics, title, reference)
    key = chart_key(system, asset)
    uri = store.put_bytes(key, png, "image/png")
    latest = {
        metric: float(history[metric].dropna().iloc[-1])
        for metric in metrics
        if metric in history and history[metric].notna().any()
    }
    figures = {
        **{f"latest_{name}": value for name, value in latest.items()},
        "periods": len(history),
        "labelled": int(history["labelled"].sum()) if "labelled" in history else 0,
    }
    write_summary(
        store,
        context,
        system,
        asset,
        figures,
        charts={"realized performance": key},
        checks=[check] if check is not None else [],
    )
    return dg.MaterializeResult(
        metadata={
            **{name: dg.MetadataValue.float(value) for name, value in latest.items()},
            "periods": dg.MetadataValue.int(len(history)),
            "history": dg.MetadataValue.md(
                history.tail(12).to_markdown(index=False, floatfmt=".3f")
                if len(history)
                else "no labelled predictions yet"
            ),
            **image_metadata(png, uri, title),
            **extra_metadata,
        }
    )
