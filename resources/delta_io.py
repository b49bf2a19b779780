"""The Delta Lake I/O manager of the team profile: dagster-deltalake-pandas with partitions that hold.

dagster-deltalake-pandas 0.29.27 finds a time-window partition's rows by equality with the window's start and
rejects `timestamp_ntz` columns; a daily partition read through `AllPartitionMapping` then returns the first day
only, and an overwrite of one day replaced the whole table. This handler keeps the library's I/O manager (table
`<root>/<schema>/<table>`, the asset key prefix being the schema, `partition_expr` metadata naming the column)
and replaces the partition logic: a time window selects `start <= column < end`, static and dynamic partitions
`column IN (...)`; a partition is written by an overwrite with that predicate, atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from dagster import InputContext, MetadataValue, OutputContext
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice
from dagster_deltalake.io_manager import TableConnection
from dagster_deltalake_pandas import DeltaLakePandasIOManager, DeltaLakePandasTypeHandler

from resources.tables import _literal, from_arrow, range_predicate, to_arrow


def _predicate(table_slice: TableSlice) -> str | None:
    parts = []
    for dimension in table_slice.partition_dimensions or []:
        if isinstance(dimension.partitions, TimeWindow):
            parts.append(range_predicate(dimension.partition_expr, *dimension.partitions))
        else:
            values = ", ".join(_literal(value) for value in dimension.partitions)
            parts.append(f"{dimension.partition_expr} IN ({values})")
    return " AND ".join(parts) or None


def _filter(table_slice: TableSlice, schema: pa.Schema) -> ds.Expression | None:
    expression = None
    for dimension in table_slice.partition_dimensions or []:
        column = ds.field(dimension.partition_expr)
        kind = schema.field(dimension.partition_expr).type
        if isinstance(dimension.partitions, TimeWindow):
            start, end = (pa.scalar(pd.Timestamp(value).to_pydatetime(), kind) for value in dimension.partitions)
            part = (column >= start) & (column < end)
        else:
            part = column.isin(pa.array(list(dimension.partitions), kind))
        expression = part if expression is None else expression & part
    return expression


class PlatformDeltaTypeHandler(DeltaLakePandasTypeHandler):
    def to_arrow(self, obj: pd.DataFrame) -> tuple[pa.RecordBatchReader, dict[str, Any]]:
        return to_arrow(obj).to_reader(), {}

    def from_arrow(self, obj: pa.RecordBatchReader, target_type: type) -> pd.DataFrame:
        return from_arrow(obj.read_all())

    def handle_output(
        self, context: OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection: TableConnection
    ) -> None:
        from deltalake import DeltaTable, write_deltalake

        rows = to_arrow(obj)
        uri, options = connection.table_uri, connection.storage_options
        predicate = _predicate(table_slice)
        static = [
            d.partition_expr for d in table_slice.partition_dimensions or [] if not isinstance(d.partitions, TimeWindow)
        ]
        if predicate is None:
            # An unpartitioned asset is the whole table: its columns may change, as DuckDB's drop-and-create allows.
            write_deltalake(uri, rows, mode="overwrite", schema_mode="overwrite", storage_options=options)
        elif DeltaTable.is_deltatable(uri, storage_options=options):
            write_deltalake(
                uri, rows, mode="overwrite", predicate=predicate, partition_by=static or None, storage_options=options
            )
        else:
            write_deltalake(uri, rows, mode="append", partition_by=static or None, storage_options=options)
        version = DeltaTable(uri, storage_options=options).version()
        context.add_output_metadata(
            {
                "table_uri": MetadataValue.text(uri),
                "delta_version": MetadataValue.int(version),
                "dagster/relation_identifier": MetadataValue.text(f"{table_slice.schema}.{table_slice.table}"),
            }
        )

    def load_input(self, context: InputContext, table_slice: TableSlice, connection: TableConnection) -> pd.DataFrame:
        from deltalake import DeltaTable

        dataset = DeltaTable(connection.table_uri, storage_options=connection.storage_options).to_pyarrow_dataset()
        table = dataset.to_table(columns=table_slice.columns, filter=_filter(table_slice, dataset.schema))
        return from_arrow(table)


class PlatformDeltaIOManager(DeltaLakePandasIOManager):
    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [PlatformDeltaTypeHandler()]
