"""The inference log: every answer the API serves, kept as append-only Parquet files in the object store.

A route calls `InferenceLog.record(...)` once per answer. That call only appends a tuple to an in-memory deque
(no I/O, no serialization, no lock), so logging can neither slow an answer by more than a few microseconds nor
fail it. A background thread wakes every `flush_seconds` (or as soon as `buffer_rows` rows are waiting),
serializes the rows and writes one file per system and UTC hour under
`<system>/inference_log/hour=YYYY-MM-DD-HH/<uuid4 hex>.parquet`; the app's lifespan flushes the rest on shutdown.
A crash (SIGKILL, OOM) therefore loses at most the rows answered since the last flush began: at most
`flush_seconds` of answers, and never more than `buffer_rows` rows once the size trigger has fired.
A failing object store keeps the rows for the next flush (bounded by `max_pending_rows`, oldest dropped first
and counted), and is logged, never raised into a request.

Prediction ids are UUIDv7 in hex: 32 hex digits whose first 48 bits are the millisecond the answer was logged,
so a lookup reads one hour's folder instead of the whole log. Deploy reuses its queue's ids (uuid4 hex).
"""

from __future__ import annotations

import collections
import io
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from mlops_assets.common.log_format import arrow_schema, hour_prefix

log = logging.getLogger("serving.inference_log")

ID_PATTERN = r"^[0-9a-fA-F]{32}$"
_RAND_B = (1 << 62) - 1


def new_prediction_id(now_ns: int | None = None) -> tuple[str, int]:
    """A UUIDv7 (RFC 9562) as 32 hex digits, and the microsecond it stands for."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    rand = int.from_bytes(os.urandom(10), "big")  # unguessable: the id alone opens the logged inputs
    value = ((now_ns // 1_000_000) << 80) | (7 << 76) | ((rand >> 68) << 64) | (0b10 << 62) | (rand & _RAND_B)
    return f"{value:032x}", now_ns // 1000


def id_time(prediction_id: str) -> datetime | None:
    """When a UUIDv7 id was issued; None for other ids (deploy's uuid4 queue ids)."""
    if len(prediction_id) != 32 or prediction_id[12] != "7" or prediction_id[16] not in "89ab":
        return None
    return datetime.fromtimestamp(int(prediction_id[:12], 16) / 1000, tz=UTC)


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
    """One log file: the table as zstd-compressed Parquet."""
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


# Rows encoded between two voluntary releases of the GIL by the writer thread. Without them a flush of a busy
# second (20,000 rows at Pistachio's rate) held the GIL for a whole 5 ms switch interval at a time, and the answers
# waiting on it showed in the p99 (2.0 -> 5.7 ms in scripts/bench_inference_log.py).
YIELD_EVERY = 128


def parquet_bytes_yielding(records: list[tuple]) -> bytes:
    """`parquet_bytes` of `encode`d records, built a chunk at a time with the GIL released between chunks."""
    import pyarrow as pa

    schema = arrow_schema()
    batches = []
    for start in range(0, len(records), YIELD_EVERY):
        rows = [encode(r) for r in records[start : start + YIELD_EVERY]]
        batches.append(pa.RecordBatch.from_pylist(rows, schema=schema))
        time.sleep(0)  # let a request thread take the GIL now rather than at the end of the switch interval
    return _file_bytes(pa.Table.from_batches(batches, schema=schema))


def read_rows(data: bytes, prediction_id: str | None = None) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    if prediction_id is not None:
        import pyarrow.compute as pc

        table = table.filter(pc.equal(table["prediction_id"], prediction_id))
    return table.to_pylist()


class InferenceLog:
    """Buffered writer of the log, and the lookup behind `GET /predictions/{id}`."""

    def __init__(
        self,
        store,
        flush_seconds: float = 1.0,
        buffer_rows: int = 5000,
        max_pending_rows: int = 200_000,
        enabled: bool = True,
        recent_ids: int = 200_000,
    ):
        self.store = store
        self.flush_seconds = flush_seconds
        self.buffer_rows = buffer_rows
        self.max_pending_rows = max_pending_rows
        self.enabled = enabled
        self._pending: collections.deque = collections.deque()  # appends and pops are atomic in CPython
        self._retry: list[tuple] = []  # rows of a failed write, written first next time
        self._recent: collections.OrderedDict[str, str] = collections.OrderedDict()  # id -> file key
        self._recent_ids = recent_ids
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Where a non-v7 id was answered: callables(id) -> (system, datetime) or None (deploy's queue).
        self.locators: list[Callable[[str], tuple[str, datetime] | None]] = []
        self.files_written = 0
        self.rows_written = 0
        self.failed_writes = 0
        self.dropped_rows = 0

    @classmethod
    def from_env(cls, store, env: Mapping[str, str] | None = None) -> InferenceLog:
        env = os.environ if env is None else env
        setting = (env.get("MLOPS_INFERENCE_LOG") or "on").strip().lower()
        if setting not in {"on", "off", "1", "0", "true", "false"}:
            raise ValueError(f"MLOPS_INFERENCE_LOG must be 'on' or 'off', got {setting!r}")
        return cls(
            store,
            flush_seconds=float(env.get("MLOPS_INFERENCE_LOG_FLUSH_SECONDS") or 1.0),
            buffer_rows=int(env.get("MLOPS_INFERENCE_LOG_BUFFER_ROWS") or 5000),
            enabled=setting in {"on", "1", "true"},
        )

    # --- the request path -------------------------------------------------------------------------------------

    def record(
        self,
        system: str,
        route: str,
        inputs: Any,
        output: Any,
        model_name: str | None = None,
        model_version: str | None = None,
        lineage: Any = None,
        prediction_id: str | None = None,
    ) -> str:
        """Queue one answer; returns its prediction id. Nothing here can raise on a store problem."""
        if prediction_id is None:
            prediction_id, logged_us = new_prediction_id()
        else:
            logged_us = time.time_ns() // 1000
        if self.enabled:
            self._pending.append(
                (prediction_id, logged_us, system, route, model_name, model_version, inputs, output, lineage)
            )
            if len(self._pending) >= self.buffer_rows:
                self._wake.set()
        return prediction_id

    # --- the background writer --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None and self.enabled:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="inference-log-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Write everything still buffered (the app's shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # never let the writer die: the next round retries
                log.exception("inference log flush failed")

    def flush(self) -> int:
        """Write the buffered rows, one file per system and hour; returns how many rows were written."""
        with self._flush_lock:
            batch, self._retry = self._retry, []
            while self._pending:
                batch.append(self._pending.popleft())
            if not batch:
                return 0
            groups: dict[tuple[str, str], list[tuple]] = collections.defaultdict(list)
            for i, record in enumerate(batch):
                hour = datetime.fromtimestamp(record[1] / 1e6, tz=UTC)
                groups[(record[2], hour_prefix(record[2], hour))].append(record)
                if i % YIELD_EVERY == YIELD_EVERY - 1:
                    time.sleep(0)
            written = 0
            for (system, prefix), records in groups.items():
                key = f"{prefix}{uuid.uuid4().hex}.parquet"
                try:
                    self.store.put_bytes(key, parquet_bytes_yielding(records), "application/vnd.apache.parquet")
                except Exception as exc:
                    self.failed_writes += 1
                    log.warning(
                        "inference log: %d %s row(s) not written (%s: %s); kept for the next flush",
                        len(records),
                        system,
                        type(exc).__name__,
                        exc,
                    )
                    self._retry.extend(records)
                    continue
                written += len(records)
                self.files_written += 1
                for record in records:
                    self._recent[record[0]] = key
            self.rows_written += written
            self._trim()
            return written

    def _trim(self) -> None:
        overflow = len(self._retry) - self.max_pending_rows
        if overflow > 0:  # the store has been down a long time: keep the newest rows, say how many went
            self._retry = self._retry[overflow:]
            self.dropped_rows += overflow
            log.error("inference log: dropped the %d oldest unwritten row(s); the store keeps failing", overflow)
        while len(self._recent) > self._recent_ids:
            self._recent.popitem(last=False)

    # --- lookup -----------------------------------------------------------------------------------------------

    def find(self, prediction_id: str, systems: Iterable[str]) -> dict[str, Any] | None:
        """The logged row of `prediction_id`: still buffered, recently written by this process, or in the files
        of the hour its id names (other processes, earlier runs)."""
        for record in [*self._retry, *list(self._pending)]:
            if record[0] == prediction_id:
                return encode(record)
        key = self._recent.get(prediction_id)
        if key is not None:
            rows = read_rows(self.store.get_bytes(key), prediction_id)
            if rows:
                return rows[0]
        for prefix in self._candidate_prefixes(prediction_id, systems):
            for info in reversed(self.store.list_objects(prefix)):
                if info.key.endswith(".parquet"):
                    rows = read_rows(self.store.get_bytes(info.key), prediction_id)
                    if rows:
                        return rows[0]
        return None

    def _candidate_prefixes(self, prediction_id: str, systems: Iterable[str]) -> list[str]:
        issued = id_time(prediction_id)
        if issued is not None:
            return [hour_prefix(system, issued) for system in systems]
        hours = []
        for locate in self.locators:
            found = locate(prediction_id)
            if found is not None:
                system, when = found
                # Logged just before its outcome was stored: the hour before can hold it at an hour's turn.
                hours += [(system, when), (system, datetime.fromtimestamp(when.timestamp() - 60, tz=UTC))]
        return list(dict.fromkeys(hour_prefix(system, when) for system, when in hours))
