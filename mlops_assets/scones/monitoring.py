"""Monitoring: the original's chart of max confidence over time, from the capture table."""

from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common.constants import DUCKDB_POOL
from mlops_assets.common.images import figure_png, image_metadata, pyplot
from mlops_assets.common.keys import placement
from mlops_assets.scones.capture import ensure_capture_table
from mlops_assets.scones.constants import CAPTURE_TABLE, CHART_KEY, DEFAULT_THRESHOLD, SYSTEM, THRESHOLD_FAILURE
from mlops_assets.scones.inference import CAPTURES_KEY
from mlops_assets.scones.workflow import PASSED
from resources.object_store import ObjectStore
from resources.tables import Tables

if TYPE_CHECKING:
    import pandas as pd

CHART_WINDOW = 500  # the most recent inferences; older ones are in the table


def recent_captures(tables: Tables, limit: int = CHART_WINDOW) -> "pd.DataFrame":
    ensure_capture_table(tables)
    return tables.query(
        f"SELECT * FROM (SELECT captured_at, s3_key, max_confidence, threshold, verdict FROM {CAPTURE_TABLE} "
        "ORDER BY captured_at DESC LIMIT ?) ORDER BY captured_at",
        [limit],
    )


def confidence_chart_png(captures: "pd.DataFrame", threshold: float = DEFAULT_THRESHOLD) -> bytes:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.axhline(threshold, color="#b42318", linestyle="--", linewidth=1, label=f"threshold {threshold:.2f}")
    scored = captures[captures["max_confidence"].notna()]
    ok = scored[scored["verdict"] == PASSED]
    weak = scored[scored["verdict"] == THRESHOLD_FAILURE]
    ax.plot(scored["captured_at"], scored["max_confidence"], color="#9fb3c8", linewidth=0.8, zorder=1)
    ax.scatter(ok["captured_at"], ok["max_confidence"], s=14, color="#2680c2", label=f"passed ({len(ok)})", zorder=2)
    ax.scatter(
        weak["captured_at"],
        weak["max_confidence"],
        s=30,
        color="#d64545",
        marker="X",
        label=f"{THRESHOLD_FAILURE} ({len(weak)})",
        zorder=3,
    )
    rejected = captures[captures["max_confidence"].isna()]
    if len(rejected):
        ax.scatter(
            rejected["captured_at"],
            [0.5] * len(rejected),
            s=30,
            color="#7c5e10",
            marker="s",
            label=f"not classified ({len(rejected)})",
            zorder=3,
        )
    ax.set_ylim(0.45, 1.02)
    ax.set_ylabel("max confidence")
    ax.set_title("Scones workflow: max confidence per inference" if len(captures) else "no inferences captured yet")
    ax.legend(loc="lower left", fontsize=8)
    fig.autofmt_xdate()
    return figure_png(fig)


@dg.asset(
    **placement(SYSTEM),
    kinds={"matplotlib", "png"},
    code_version="1",
    deps=[CAPTURES_KEY],
    pool=DUCKDB_POOL,
)
def confidence_chart(
    context: dg.AssetExecutionContext, warehouse: Tables, object_store: ObjectStore
) -> dg.MaterializeResult:
    """How sure the model has been about the images that landed, with the 0.85 threshold line.

    Each dot is one inference (the latest 500); red crosses failed the threshold, brown squares could not be
    classified (corrupt or oversized objects). A falling cloud of dots means the incoming images drift away
    from what the model was trained on.
    """
    captures = recent_captures(warehouse)
    png = confidence_chart_png(captures)
    uri = object_store.put_bytes(CHART_KEY, png, "image/png")
    scored = captures[captures["max_confidence"].notna()]
    metadata = {
        "inferences": dg.MetadataValue.int(len(captures)),
        **image_metadata(png, uri, "max confidence over time"),
    }
    if len(captures):
        metadata["pass_rate"] = dg.MetadataValue.float(float((captures["verdict"] == PASSED).mean()))
    if len(scored):
        metadata["mean_max_confidence"] = dg.MetadataValue.float(float(scored["max_confidence"].mean()))
    context.log.info("charted %d inferences", len(captures))
    return dg.MaterializeResult(metadata=metadata)
