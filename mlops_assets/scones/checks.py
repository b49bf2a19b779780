"""Data-quality checks of the Scones dataset: counts, class balance, and every stored PNG decodes."""

import io
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.common.keys import key
from mlops_assets.scones.constants import CLASS_NAMES, EXPECTED_COUNTS, SYSTEM
from resources.object_store import ObjectStore

if TYPE_CHECKING:
    import pandas as pd

MAX_LISTED = 10


def _listing(items: list[str]) -> str:
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def count_problems(index: "pd.DataFrame") -> list[str]:
    """The original project's split: 1,000 train and 200 test images, half of each class."""
    problems = []
    for split, expected in EXPECTED_COUNTS.items():
        part = index[index["split"] == split]
        if len(part) != expected:
            problems.append(f"{split}: {len(part)} images, expected {expected}")
        for label, name in enumerate(CLASS_NAMES):
            found = int((part["label"] == label).sum())
            if found != expected // 2:
                problems.append(f"{split}: {found} {name} images, expected {expected // 2} (balanced classes)")
        duplicated = part["filename"][part["filename"].duplicated()].tolist()
        if duplicated:
            problems.append(f"{split}: duplicated file names {_listing(duplicated)}")
    return problems


def decode_problems(index: "pd.DataFrame", store: ObjectStore) -> list[str]:
    from PIL import Image

    problems = []
    for object_key in index["key"]:
        try:
            with Image.open(io.BytesIO(store.get_bytes(object_key))) as image:
                image.load()
                if image.size != (32, 32):
                    problems.append(f"{object_key}: {image.size[0]}x{image.size[1]}, expected 32x32")
        except Exception as exc:  # any failure to read or decode is the finding
            problems.append(f"{object_key}: {type(exc).__name__}: {exc}")
    return problems


def _result(problems: list[str], **extra) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={
            "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems[:50]) or "none"),
            "problem_count": dg.MetadataValue.int(len(problems)),
            **extra,
        },
    )


@dg.asset_check(
    asset=key(SYSTEM, "labelled_images"),
    blocking=True,
    description="1,000 train and 200 test images, 50/50 bicycle/motorcycle, unique file names",
)
def labelled_images_counts(labelled_images) -> dg.AssetCheckResult:
    return _result(count_problems(labelled_images), images=dg.MetadataValue.int(len(labelled_images)))


@dg.asset_check(
    asset=key(SYSTEM, "labelled_images"),
    blocking=True,
    description="Every PNG in the object store decodes as a 32x32 image",
)
def labelled_images_decode(labelled_images, object_store: ObjectStore) -> dg.AssetCheckResult:
    return _result(decode_problems(labelled_images, object_store), checked=dg.MetadataValue.int(len(labelled_images)))
