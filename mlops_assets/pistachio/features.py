"""The model's input adapter: the original fed lists of dicts to its DictVectorizer; MLflow serving feeds frames."""

from __future__ import annotations

import sys
from typing import Any

# skops refuses to load types it was not told to trust; this list is the code's, not the model file's.
TRUSTED_MODEL_TYPES = ["mlops_assets.pistachio.features.as_records"]


def as_records(data: Any) -> Any:
    """A DataFrame becomes a list of row dicts; lists of dicts (the original's input) pass through unchanged."""
    # No pandas import here (serving loads this module at start): a frame can only exist once pandas is loaded.
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(data, pd.DataFrame):
        return data.to_dict(orient="records")
    if isinstance(data, dict):  # a single sample, as the original's service sent it
        return [data]
    return data
