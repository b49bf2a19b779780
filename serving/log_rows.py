"""The inference log's rows: JSON text of answers and inputs, Arrow batches and Parquet files of them, and
reading a file back. Shared by the API's writer (serving.inference_log), its writer process and the tests."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import orjson

from mlops_assets.common.log_format import arrow_schema


def to_json(value: Any) -> str | None:
    """An answer or input as JSON text; pre-serialized answers are kept byte for byte."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    if hasattr(value, "model_dump_json"):  # a pydantic answer: the id is a column of its own
        return value.model_dump_json(exclude={"prediction_id"})
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()


def encode(record: tuple) -> dict[str, Any]:
    pid, logged_us, system, route, model_name, model_version, inputs, output, lineage = record
    return {
        "prediction_id": pid,
        "logged_at": datetime.fromtimestamp(logged_us / 1e6, tz=UTC),
        "system": system,
        "route": route,
        "model_name": model_name,
        "model_version": None if model_version is None else str(model_version),
        "inputs": to_json(inputs) or "{}",
        "output": to_json(output),
        "lineage": to_json(lineage),
    }


def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa

    return _file_bytes(pa.Table.from_pylist(rows, schema=arrow_schema()))


def _file_bytes(table) -> bytes:
    """One log file: the table as zstd-compressed Parquet. Written to an Arrow buffer, not a Python file object:
    Arrow's C++ writer takes the GIL back for every write into a Python object, and the event loop waited on it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", use_dictionary=DICTIONARY_COLUMNS)
    return sink.getvalue().to_pybytes()


def _texts(values: tuple) -> tuple | list:
    """JSON text of each value; bytes and str (pre-serialized answers, raw request bodies) are taken as they are."""
    if all(type(v) is bytes or type(v) is str for v in values):
        return values  # Arrow validates and copies them in C
    return [to_json(v) for v in values]


def lineage_text(lineage: Any, lineages: dict[int, tuple[Any, str | None]]) -> str | None:
    """A model's lineage as JSON text, serialized once per object: kept in `lineages` by identity (holding the
    object keeps its id from being reused)."""
    known = lineages.get(id(lineage))
    if known is None or known[0] is not lineage:
        known = lineages[id(lineage)] = (lineage, to_json(lineage))
    return known[1]


def record_batch(records: list[tuple], lineages: dict[int, tuple[Any, str | None]] | None = None):
    """The Arrow batch of `records`: what `parquet_bytes([encode(r) ...])` holds, built column by column (~1 µs a
    row instead of ~7 through row dicts): the rows are transposed in C, answers and raw request bodies go to Arrow
    as the bytes the route sent, and each model's lineage is serialized once and kept in `lineages` by identity."""
    import pyarrow as pa

    lineages = {} if lineages is None else lineages
    ids, times, systems, routes, names, versions, inputs, outputs, lineage_objects = zip(*records, strict=True)
    lineage_texts = [lineage_text(lineage, lineages) for lineage in lineage_objects]
    if not all(type(v) is str for v in versions):
        versions = [None if v is None else str(v) for v in versions]
    text = pa.string()
    schema = arrow_schema()
    arrays = [
        pa.array(ids, text),
        pa.array(times, schema.field("logged_at").type),
        pa.array(systems, text),
        pa.array(routes, text),
        pa.array(names, text),
        pa.array(versions, text),
        pa.array([t or "{}" for t in _texts(inputs)], text),
        pa.array(_texts(outputs), text),
        pa.array(lineage_texts, text),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# Columns with a handful of distinct values a file. Dictionary-encoding the others (ids, inputs, answers: all
# distinct) only cost time: 23 ms a busy second's file with every column tried, 9 ms with these.
DICTIONARY_COLUMNS = ["system", "route", "model_name", "model_version", "lineage"]


def parquet_bytes_of(batches: list) -> bytes:
    """One log file of the writer's batches; Arrow's C++ encodes and compresses it with the GIL released."""
    import pyarrow as pa

    return _file_bytes(pa.Table.from_batches(batches, schema=arrow_schema()))


def read_rows(data: bytes, prediction_id: str | None = None) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    if prediction_id is not None:
        import pyarrow.compute as pc

        table = table.filter(pc.equal(table["prediction_id"], prediction_id))
    return table.to_pylist()
