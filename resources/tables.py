"""Table access for the asset code that does more than hand a DataFrame to the I/O manager.

A few assets read tables with SQL, append rows or replace one partition themselves (the inference log, the Scones
capture table, the monitoring charts). They ask for the `warehouse` resource, a `Tables`, and never for a format:
`DuckDBTables` works on the local DuckDB file (the embedded profile), `DeltaTables` on Delta Lake tables under a
root folder or S3 prefix (the team profile, `MLOPS_TABLE_FORMAT=delta`). Tables are named `<system>.<table>`, the
asset key's prefix being the schema, as the I/O managers name them.

SQL always runs in DuckDB. Over Delta it reads each table the statement names through Arrow (deltalake's
`to_pyarrow_dataset`): DuckDB 2.0 cannot load its delta or httpfs extensions offline, and Arrow needs neither.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# Delta's `timestamp` is UTC. A naive pandas column (naive UTC by the platform's convention) is stored as one, marked
# with this field metadata, and read back naive: `timestamp_ntz` columns cannot be partition columns for
# dagster-deltalake, and DuckDB reads both the same way.
NAIVE_UTC = b"mlops.naive_utc"
TABLE_REFERENCE = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_]\w*\.[A-Za-z_]\w*)\b", re.IGNORECASE)


def split_name(table: str) -> tuple[str, str]:
    schema, _, name = table.partition(".")
    if not schema or not name or not all(part.replace("_", "").isalnum() for part in (schema, name)):
        raise ValueError(f"a table is named <schema>.<table> with letters, digits and _, got {table!r}")
    return schema, name


def to_arrow(rows: pd.DataFrame | pa.Table, schema: pa.Schema | None = None) -> pa.Table:
    """Rows as Arrow for Delta: naive timestamps as marked UTC ones, columns of nothing but nulls as strings."""
    import pandas as pd
    import pyarrow as pa

    table = pa.Table.from_pandas(rows, schema=schema, preserve_index=False) if isinstance(rows, pd.DataFrame) else rows
    if schema is not None:
        table = table.select(schema.names).cast(schema)
    fields, columns = [], []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(field.type) and field.type.tz is None:
            field = pa.field(field.name, pa.timestamp("us", tz="UTC"), field.nullable, {NAIVE_UTC: b"1"})
            column = column.cast(pa.timestamp("us")).cast(field.type)
        elif pa.types.is_null(field.type):
            field = pa.field(field.name, pa.string())
            column = column.cast(pa.string())
        fields.append(field)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def naive_columns(schema: pa.Schema) -> list[str]:
    return [field.name for field in schema if (field.metadata or {}).get(NAIVE_UTC)]


def from_arrow(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    for name in naive_columns(table.schema):
        frame[name] = frame[name].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


def _literal(value: Any) -> str:
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text.replace("'", "''") + "'"


def range_predicate(column: str, start: Any, end: Any) -> str:
    """A predicate in the SQL both DuckDB and delta-rs (DataFusion) read."""
    return f"{column} >= {_literal(start)} AND {column} < {_literal(end)}"


class Tables(dg.ConfigurableResource):
    """What asset code may do with a table `<system>.<table>`, whatever the format stores it as."""

    def exists(self, table: str) -> bool:
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Ad-hoc SQL (DuckDB's dialect) over the tables; `?` placeholders take `params`."""
        raise NotImplementedError

    def ensure(self, table: str, schema: pa.Schema) -> None:
        """Creates the table empty with `schema` unless it exists, so readers find an empty table."""
        raise NotImplementedError

    def append(self, table: str, rows: pd.DataFrame | pa.Table) -> None:
        """Adds the rows in one transaction (created with their schema when missing)."""
        raise NotImplementedError

    def replace_rows(self, table: str, rows: pd.DataFrame | pa.Table, column: str, start: Any, end: Any) -> None:
        """Replaces the rows whose `column` is in [start, end) by `rows`, in one transaction: a partition written
        again replaces itself, and an empty `rows` leaves the partition empty."""
        raise NotImplementedError

    def read(self, table: str) -> pd.DataFrame:
        split_name(table)
        return self.query(f"SELECT * FROM {table}")


class DuckDBPandasTables(dg.ConfigurableIOManagerFactory):
    """The I/O manager of the embedded profile: dagster-duckdb-pandas' `DuckDBPandasIOManager` on the local DuckDB
    file, one schema per system. Built when a run first stores or loads a table, not when the code location loads:
    dagster-duckdb-pandas imports pandas, and every UI reload, daemon tick and `dagster` command would pay for it."""

    # The fields dagster-duckdb's client reads from the resource's config when it connects.
    database: str = Field(description="Path to the DuckDB file.")
    connection_config: dict[str, Any] = Field(
        default={}, description="DuckDB connection options (`duckdb.connect(config=...)`)."
    )

    def create_io_manager(self, context: dg.InitResourceContext):
        from dagster_duckdb_pandas import DuckDBPandasIOManager

        return DuckDBPandasIOManager(
            database=self.database, connection_config=self.connection_config
        ).create_io_manager(context)


class DuckDBTables(Tables):
    """Tables in the local DuckDB file, one writing process at a time (the `duckdb_warehouse` pool)."""

    database: str = Field(description="Path of the DuckDB file")

    @contextmanager
    def get_connection(self) -> Iterator[Any]:
        """The DuckDB connection itself, for tests and scripts of the embedded profile (asset code never uses it)."""
        from dagster_duckdb import DuckDBResource  # retries while another process holds the file's lock

        with DuckDBResource(database=self.database).get_connection() as connection:
            yield connection

    def exists(self, table: str) -> bool:
        schema, name = split_name(table)
        with self.get_connection() as connection:
            sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?"
            return bool(connection.execute(sql, [schema, name]).fetchone()[0])

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self.get_connection() as connection:
            return connection.execute(sql, list(params)).df()

    @staticmethod
    def _create(connection, table: str, rows: pa.Table) -> None:
        schema, _ = split_name(table)
        connection.register("__rows", rows)
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        connection.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM __rows WHERE false")

    def ensure(self, table: str, schema: pa.Schema) -> None:
        with self.get_connection() as connection:
            self._create(connection, table, schema.empty_table())

    def _write(self, table: str, rows: pd.DataFrame | pa.Table, where: str | None) -> None:
        import pandas as pd
        import pyarrow as pa

        rows = pa.Table.from_pandas(rows, preserve_index=False) if isinstance(rows, pd.DataFrame) else rows
        with self.get_connection() as connection:
            connection.execute("BEGIN TRANSACTION")
            try:
                self._create(connection, table, rows)
                if where is not None:
                    connection.execute(f"DELETE FROM {table} WHERE {where}")
                connection.execute(f"INSERT INTO {table} BY NAME SELECT * FROM __rows")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    def append(self, table: str, rows: pd.DataFrame | pa.Table) -> None:
        self._write(table, rows, None)

    def replace_rows(self, table: str, rows: pd.DataFrame | pa.Table, column: str, start: Any, end: Any) -> None:
        self._write(table, rows, range_predicate(column, start, end))


class DeltaTables(Tables):
    """Delta Lake tables under `root` (`<root>/<system>/<table>`), written by deltalake (delta-rs).

    Every commit is an atomic put-if-absent of the next log entry (S3 conditional writes), so concurrent writers
    never lose a commit; Dagster's `duckdb_warehouse` pool still runs the platform's read-then-write steps one at a
    time (docs/scale-out.md, Tables)."""

    root: str = Field(description="Folder or s3:// prefix holding one folder per system")
    storage_options: dict[str, str] = Field(default_factory=dict, description="deltalake storage options (no secrets)")

    def uri(self, table: str) -> str:
        schema, name = split_name(table)
        return f"{self.root.rstrip('/')}/{schema}/{name}"

    def exists(self, table: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.uri(table), storage_options=self.storage_options)

    def dataset(self, table: str):
        from deltalake import DeltaTable

        return DeltaTable(self.uri(table), storage_options=self.storage_options).to_pyarrow_dataset()

    @contextmanager
    def connection(self, tables: Sequence[str]) -> Iterator[Any]:
        """An in-memory DuckDB session where each existing table of `tables` is a view over its Arrow
        dataset: reads stream from the Parquet files, filters reach them."""
        import duckdb

        # The session's time zone is UTC: DuckDB 2.0 without its ICU extension (not loadable offline) has no other.
        connection = duckdb.connect()
        try:
            for i, table in enumerate(sorted(set(tables))):
                if not self.exists(table):
                    continue  # DuckDB then names the missing table, as it does for the file
                dataset = self.dataset(table)
                connection.register(f"__delta_{i}", dataset)
                naive = naive_columns(dataset.schema)
                casts = ", ".join(f"timezone('UTC', {name}) AS {name}" for name in naive)
                replace = f" REPLACE ({casts})" if naive else ""
                connection.execute(f"CREATE SCHEMA IF NOT EXISTS {split_name(table)[0]}")
                connection.execute(f"CREATE VIEW {table} AS SELECT *{replace} FROM __delta_{i}")
            yield connection
        finally:
            connection.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        # The tables the statement reads: `schema.table` after FROM or JOIN (duckdb.get_table_names would bind a
        # USING join before the views exist, and fail).
        with self.connection(TABLE_REFERENCE.findall(sql)) as connection:
            return connection.execute(sql, list(params)).df()

    def _write(self, table: str, rows: pa.Table, **options) -> None:
        from deltalake import write_deltalake

        write_deltalake(self.uri(table), rows, storage_options=self.storage_options, **options)

    def ensure(self, table: str, schema: pa.Schema) -> None:
        self._write(table, to_arrow(schema.empty_table()), mode="ignore")

    def append(self, table: str, rows: pd.DataFrame | pa.Table) -> None:
        self._write(table, to_arrow(rows), mode="append", schema_mode="merge")

    def replace_rows(self, table: str, rows: pd.DataFrame | pa.Table, column: str, start: Any, end: Any) -> None:
        rows = to_arrow(rows)
        if not self.exists(table):
            self._write(table, rows, mode="append")
            return
        self._write(table, rows, mode="overwrite", predicate=range_predicate(column, start, end))
