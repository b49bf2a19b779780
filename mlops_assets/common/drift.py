"""Data drift of logged inputs against a reference (the champion's training data), computed by Evidently.

Evidently (and the pandas/scipy/plotly it pulls in) is imported inside `compute_drift`: loading the code location
must not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common.images import figure_png, image_metadata, pyplot
from mlops_assets.common.log_format import summary_key
from mlops_assets.common.monitoring import DRIFT_CHECK, warn_result, write_summary
from mlops_assets.common.runs import run_id_of
from resources.monitoring import MonitoringSettings
from resources.object_store import ObjectStore

if TYPE_CHECKING:
    import pandas as pd

MIN_CURRENT_ROWS = 5  # fewer logged answers say nothing about a distribution


@dataclass
class DriftResult:
    scores: dict[str, float]  # Evidently's drift score per feature (a p-value or a distance, see `methods`)
    methods: dict[str, str]
    drifted: dict[str, bool]
    reference_rows: int
    current_rows: int
    html: str = field(repr=False, default="")

    @property
    def share(self) -> float:
        return sum(self.drifted.values()) / len(self.drifted) if self.drifted else 0.0


def compute_drift(
    reference: pd.DataFrame, current: pd.DataFrame, numerical: list[str], categorical: list[str] = ()
) -> DriftResult:
    """Per-feature drift (Evidently's DataDriftPreset: K-S / chi-square on small samples, distances on large)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [*numerical, *categorical]
    definition = DataDefinition(numerical_columns=list(numerical), categorical_columns=list(categorical))
    report = Report([DataDriftPreset(columns=columns)], include_tests=True)
    snapshot = report.run(
        current_data=Dataset.from_pandas(current[columns].reset_index(drop=True), definition),
        reference_data=Dataset.from_pandas(reference[columns].reset_index(drop=True), definition),
    )
    result = snapshot.dict()
    scores, methods, drifted = {}, {}, {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith(":ValueDrift"):
            scores[config["column"]] = float(metric["value"])
            methods[config["column"]] = str(config.get("method"))
    for test in result["tests"]:
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type", "").endswith(":ValueDrift"):
            drifted[params["column"]] = test["status"] == "FAIL"
    return DriftResult(scores, methods, drifted, len(reference), len(current), snapshot.get_html_str(as_iframe=False))


def drift_chart_png(drift: DriftResult, title: str) -> bytes:
    """One bar per feature: its drift score, red when Evidently judged it drifted (the method is in the label,
    since a p-value drifts when small and a distance when large)."""
    plt = pyplot()
    names = sorted(drift.scores)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    ax.barh(
        [f"{name} ({drift.methods[name].split()[0]})" for name in names],
        [drift.scores[n] for n in names],
        color=["#d64545" if drift.drifted.get(n) else "#2680c2" for n in names],
    )
    ax.set_xlabel("drift score")
    ax.set_title(f"{title}: {sum(drift.drifted.values())} of {len(names)} drifted (share {drift.share:.2f})")
    return figure_png(fig)


def report_key(system: str, run_id: str) -> str:
    return f"monitoring/{system}/drift_reports/{run_id}.html"


def drift_output(
    context: dg.AssetExecutionContext,
    store: ObjectStore,
    monitoring: MonitoringSettings,
    system: str,
    asset: str,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str] = (),
    **extra_metadata,
) -> tuple[dg.MaterializeResult, dg.AssetCheckResult]:
    """Compute drift, store the HTML report and the overview's summary; metadata floats for the UI's plots."""
    threshold = monitoring.drift_share_threshold
    if len(current) < MIN_CURRENT_ROWS or reference.empty:
        why = (
            f"{len(current)} logged answers in the window (at least {MIN_CURRENT_ROWS} needed)"
            if len(current) < MIN_CURRENT_ROWS
            else "no reference data (no champion trained yet)"
        )
        context.log.info("no drift computed: %s", why)
        check = warn_result(DRIFT_CHECK, True, f"nothing to compare: {why}")
        write_summary(store, context, system, asset, {"current_rows": len(current)}, checks=[check], note=why)
        return dg.MaterializeResult(
            metadata={
                "current_rows": dg.MetadataValue.int(len(current)),
                "note": dg.MetadataValue.text(why),
                **extra_metadata,
            }
        ), check
    drift = compute_drift(reference, current, numerical, categorical)
    key = report_key(system, run_id_of(context))
    uri = store.put_bytes(key, drift.html.encode(), "text/html")
    drifted = sorted(name for name, flag in drift.drifted.items() if flag)
    crossed = drift.share >= threshold
    check = warn_result(
        DRIFT_CHECK,
        not crossed,
        f"{len(drifted)} of {len(drift.drifted)} features drifted (share {drift.share:.2f}, threshold {threshold:.2f})"
        + (f": {', '.join(drifted)}" if drifted else ""),
        drift_share=dg.MetadataValue.float(drift.share),
        threshold=dg.MetadataValue.float(threshold),
    )
    figures = {
        "drift_share": drift.share,
        "drifted_features": len(drifted),
        "features": len(drift.drifted),
        "current_rows": drift.current_rows,
        "reference_rows": drift.reference_rows,
        "scores": drift.scores,
        "drifted": drifted,
    }
    png = drift_chart_png(drift, f"{system} input drift")
    chart = summary_key(system, asset, "png")
    chart_uri = store.put_bytes(chart, png, "image/png")
    write_summary(
        store, context, system, asset, figures, charts={"drift per feature": chart}, checks=[check], report_key=key
    )
    metadata = {
        "drift_share": dg.MetadataValue.float(drift.share),
        "drifted_features": dg.MetadataValue.int(len(drifted)),
        **{f"drift_score/{name}": dg.MetadataValue.float(score) for name, score in drift.scores.items()},
        "drift_methods": dg.MetadataValue.json(drift.methods),
        "drifted": dg.MetadataValue.json(drifted),
        "current_rows": dg.MetadataValue.int(drift.current_rows),
        "reference_rows": dg.MetadataValue.int(drift.reference_rows),
        "report": dg.MetadataValue.url(uri) if uri.startswith(("http", "s3")) else dg.MetadataValue.path(uri),
        **image_metadata(png, chart_uri, "drift score per feature"),
        **extra_metadata,
    }
    context.log.info("drift share %.2f over %d logged answers (report %s)", drift.share, drift.current_rows, uri)
    return dg.MaterializeResult(metadata=metadata), check
