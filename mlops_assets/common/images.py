"""PNG helpers: render matplotlib figures and preview them in the Dagster UI."""

from __future__ import annotations

import base64
import io

import dagster as dg

PREVIEW_MAX_PX = 320


def pyplot():
    """matplotlib.pyplot, imported by the first picture drawn rather than by every load of the code location."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig) -> bytes:
    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def preview_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    """A small inline copy of the picture, so the asset page shows it without leaving the UI."""
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    image.thumbnail((PREVIEW_MAX_PX, PREVIEW_MAX_PX))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


def image_metadata(png: bytes, uri: str, alt: str) -> dict[str, dg.MetadataValue]:
    return {
        "preview": preview_markdown(png, alt),
        "uri": dg.MetadataValue.url(uri) if uri.startswith(("http", "s3")) else dg.MetadataValue.path(uri),
        "bytes": dg.MetadataValue.int(len(png)),
    }
