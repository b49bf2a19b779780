"""Metadata every table asset reports the same way: its row count and its column schema."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    import pandas as pd


def table_metadata(frame: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    """`dagster/row_count` and `dagster/column_schema` of a DataFrame (the column types as pandas names them)."""
    schema = dg.TableSchema(columns=[dg.TableColumn(str(name), str(dtype)) for name, dtype in frame.dtypes.items()])
    return {
        "dagster/row_count": dg.MetadataValue.int(len(frame)),
        "dagster/column_schema": dg.MetadataValue.table_schema(schema),
    }
