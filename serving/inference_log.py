"""The inference log: every answer the API serves, kept as append-only Parquet files in the object store.

A route calls `InferenceLog.record(...)` once per answer. That call only appends a tuple to an in-memory deque
(no I/O, no serialization, no lock), so logging can neither slow an answer by more than a few microseconds nor
fail it. Who writes the files (one per system and UTC hour, under
`<system>/inference_log/hour=YYYY-MM-DD-HH/<uuid4 hex>.parquet`):
- in the API (`writer="process"`, `MLOPS_INFERENCE_LOG_WRITER`'s default), a writer process at idle priority that
  the event loop hands the rows to every 20 ms and that writes every `flush_seconds` (serving.log_process says what
  it keeps where, and how a kill of either process is survived): a SIGKILLed API loses at most its last 20 ms;
- otherwise (`writer="thread"`, the deploy consumer, tests), this process: the rows are turned into Arrow arrays as
  they come (every 20 ms; on the API's event loop in slices between requests) and written every `flush_seconds`,
  or as soon as `buffer_rows` rows wait. A crash (SIGKILL, OOM) loses at most the rows answered since the last
  flush began: at most `flush_seconds` of answers, never more than `buffer_rows` once the size trigger has fired.
The app's lifespan writes the rest on shutdown. A failing object store keeps the rows for the next flush (bounded
by `max_pending_rows`, oldest dropped first and counted), and is logged, never raised into a request.

Prediction ids are UUIDv7 in hex: 32 hex digits whose first 48 bits are the millisecond the answer was logged,
so a lookup reads one hour's folder instead of the whole log. Deploy reuses its queue's ids (uuid4 hex).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from mlops_assets.common.log_format import arrow_schema, hour_prefix

# Looked up here when the writer runs (tests replace them to watch it): the rows' encoding lives in log_rows.
from serving.log_rows import encode, parquet_bytes_of, read_rows, record_batch

log = logging.getLogger("serving.inference_log")

ID_PATTERN = r"^[0-9a-fA-F]{32}$"
US_PER_HOUR = 3_600_000_000
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


# Answers encoded in one slice, between which the requests that came meanwhile are answered: ~0.2 ms a slice, the
# most a request waits for the log. Smaller slices pay Arrow's per-call cost more often (~2 µs a row at 64).
YIELD_EVERY = 256
# How often the writer encodes what waits. Encoding a whole second's answers at once (17,000 at /classify's rate)
# held the requests of that tenth of the second back, and they made the p99; encoded as they come, the same work
# is spread thin over the second.
ENCODE_SECONDS = 0.02


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
        writer: str = "thread",
    ):
        self.writer = writer  # "process": serving.log_process, when started on the API's event loop
        self._process = None
        self.store = store
        self.flush_seconds = flush_seconds
        self.buffer_rows = buffer_rows
        self.max_pending_rows = max_pending_rows
        self.enabled = enabled
        self._pending: collections.deque = collections.deque()  # appends and pops are atomic in CPython
        # Encoded rows by (system, hour folder) -> (Arrow batches, their ids): not yet written, being written, and
        # kept after a failed write. `_lock` guards only swaps of these dicts, never encoding or I/O.
        self._groups: dict[tuple[str, str], tuple[list, list[str]]] = {}
        self._writing: list[dict[tuple[str, str], tuple[list, list[str]]]] = []
        self._failed: dict[tuple[str, str], tuple[list, list[str]]] = {}
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._lineages: dict[int, tuple[Any, str | None]] = {}
        # id -> file key of what this process wrote, one dict per file, newest last. Filled and forgotten a whole
        # file at a time in C (`dict.fromkeys`, popleft): a Python loop over a busy second's 20,000 ids held the GIL
        # for milliseconds at each flush, and the requests waiting on it made the p99.
        self._recent: collections.deque[dict[str, str]] = collections.deque()
        self._recent_count = 0
        self._recent_ids = recent_ids
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._runner: threading.Thread | asyncio.Task | None = None
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
        writer = (env.get("MLOPS_INFERENCE_LOG_WRITER") or "process").strip().lower()
        if writer not in {"process", "thread"}:
            raise ValueError(f"MLOPS_INFERENCE_LOG_WRITER must be 'process' or 'thread', got {writer!r}")
        return cls(
            store,
            flush_seconds=float(env.get("MLOPS_INFERENCE_LOG_FLUSH_SECONDS") or 1.0),
            buffer_rows=int(env.get("MLOPS_INFERENCE_LOG_BUFFER_ROWS") or 5000),
            enabled=setting in {"on", "1", "true"},
            writer=writer,
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

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Write in the background. On `loop` (the API's): the rows are encoded there in slices between requests,
        and the files written in a worker thread (Arrow's encoder runs there with the GIL released). Encoding in a
        thread of its own made the event loop trade the GIL with it for every slice, and the requests waiting on
        those trades made /classify's p99 with logging +76 %. Without a loop (the deploy queue's consumer,
        tests): a thread of its own."""
        if self._runner is not None or not self.enabled:
            return
        self._stop.clear()
        if loop is not None and self.writer == "process":
            from serving.log_process import WriterProcess, store_spec

            spec = store_spec(self.store)
            if spec is not None:
                self._process = WriterProcess(self, spec)
                self._process.start(loop)
                self._runner = loop.create_task(self._process.run(ENCODE_SECONDS), name="inference-log-sender")
                return
            log.warning(
                "inference log: a %s cannot be rebuilt in a writer process; writing from a thread",
                type(self.store).__name__,
            )
        if loop is not None:
            self._runner = loop.create_task(self._run_on_loop(), name="inference-log-writer")
        else:
            self._runner = threading.Thread(target=self._run_in_thread, name="inference-log-writer", daemon=True)
            self._runner.start()

    def stop(self) -> None:
        """Write everything still buffered (the consumer's shutdown; the API awaits `aclose`)."""
        self._stop.set()
        self._wake.set()
        if isinstance(self._runner, threading.Thread):
            self._runner.join(timeout=30)
        self._runner = None
        self.flush()

    async def aclose(self) -> None:
        """`stop` for the API's lifespan: the writer task ends after its current slice or write, then the rest is
        written in a worker thread."""
        self._stop.set()
        if self._process is not None:
            self._runner.cancel()
            await self._process.aclose()
            self._process = self._runner = None
            return
        if isinstance(self._runner, asyncio.Task):
            await self._runner
        self._runner = None
        await asyncio.to_thread(self.flush)

    def _due(self, last_write: float) -> bool:
        return time.monotonic() - last_write >= self.flush_seconds or self.unwritten_rows() >= self.buffer_rows

    async def _run_on_loop(self) -> None:
        last_write = time.monotonic()
        while not self._stop.is_set():
            await asyncio.sleep(ENCODE_SECONDS)
            try:
                # What waits now, in full slices: the answers that come meanwhile wait for the next round, or
                # the loop would chase them in slices of a row or two, each paying Arrow's per-call cost.
                for _ in range(-(-len(self._pending) // YIELD_EVERY)):
                    self._encode_some(YIELD_EVERY)
                    await asyncio.sleep(0)  # the requests that came meanwhile go first
                if self._due(last_write):
                    last_write = time.monotonic()
                    await asyncio.to_thread(self._write_encoded)
            except Exception:  # never let the writer die: the next round retries
                log.exception("inference log flush failed")

    def _run_in_thread(self) -> None:
        last_write = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(ENCODE_SECONDS)
            self._wake.clear()
            try:
                for _ in range(-(-len(self._pending) // YIELD_EVERY)):
                    self._encode_some(YIELD_EVERY)
                    time.sleep(0)  # release the GIL between slices rather than at the end of a switch interval
                if self._due(last_write):
                    last_write = time.monotonic()
                    self._write_encoded()
            except Exception:  # never let the writer die: the next round retries
                log.exception("inference log flush failed")

    def unwritten_rows(self) -> int:
        held = [*self._groups.values(), *self._failed.values()]
        handed_over = 0 if self._process is None else self._process.rows()
        return len(self._pending) + handed_over + sum(len(ids) for _, ids in held)

    def _encode_some(self, limit: int) -> None:
        """Turn up to `limit` waiting rows into Arrow batches, one per system and hour.

        The rows leave the deque only once their batch is in `_groups`, so `find` sees each answer in one of the two
        at every moment (popping first left a window in which `GET /predictions/{id}` missed a fresh answer)."""
        with self._encode_lock:  # one encoder at a time: both read the same head of the deque
            count = min(limit, len(self._pending))
            chunk: dict[tuple[str, int], list[tuple]] = collections.defaultdict(list)
            for i in range(count):  # indexing, not iterating: the request path appends meanwhile
                record = self._pending[i]
                chunk[(record[2], record[1] // US_PER_HOUR)].append(record)
            built = []
            for (system, hour), records in chunk.items():
                key = (system, hour_prefix(system, datetime.fromtimestamp(hour * 3600, tz=UTC)))
                try:
                    built.append((key, record_batch(records, self._lineages), [r[0] for r in records]))
                except Exception:  # one row that cannot be encoded must not take the others with it
                    encodable = []
                    for record in records:
                        try:
                            record_batch([record], self._lineages)
                            encodable.append(record)
                        except Exception:
                            self.dropped_rows += 1
                            log.exception("inference log: answer %s cannot be logged; dropped", record[0])
                    if encodable:
                        built.append((key, record_batch(encodable, self._lineages), [r[0] for r in encodable]))
            with self._lock:
                for key, batch, ids in built:
                    batches, group_ids = self._groups.setdefault(key, ([], []))
                    batches.append(batch)
                    group_ids.extend(ids)
            for _ in range(count):
                self._pending.popleft()
            if len(self._lineages) > 64:  # models come and go: forget the old ones' lineage now and then
                self._lineages.clear()

    def flush(self) -> int:
        """Encode and write everything buffered, one file per system and hour; returns how many rows were written."""
        while self._pending:
            self._encode_some(YIELD_EVERY)
        return self._write_encoded()

    def _write_encoded(self) -> int:
        with self._lock:
            work, self._groups = self._groups, {}
            for key, (batches, ids) in self._failed.items():  # what failed before is written first
                newer = work.pop(key, ([], []))
                work[key] = (batches + newer[0], ids + newer[1])
            self._failed = {}
            self._writing.append(work)
        written = 0
        kept = {}
        try:
            for key, (batches, ids) in work.items():
                name = f"{key[1]}{uuid.uuid4().hex}.parquet"
                try:
                    self.store.put_bytes(name, parquet_bytes_of(batches), "application/vnd.apache.parquet")
                except Exception as exc:
                    self.failed_writes += 1
                    log.warning(
                        "inference log: %d %s row(s) not written (%s: %s); kept for the next flush",
                        len(ids),
                        key[0],
                        type(exc).__name__,
                        exc,
                    )
                    kept[key] = (batches, ids)
                    continue
                written += len(ids)
                self.files_written += 1
                self._remember(name, ids)
        finally:
            with self._lock:
                self._writing.remove(work)
                for key, (batches, ids) in kept.items():
                    older = self._failed.pop(key, ([], []))
                    self._failed[key] = (older[0] + batches, older[1] + ids)
                self._trim()
        self.rows_written += written
        return written

    def _remember(self, name: str, ids: list[str]) -> None:
        """`ids` are in the file `name` (written here, or by the writer process); the caller trims."""
        self._recent.append(dict.fromkeys(ids, name))
        self._recent_count += len(ids)

    def _trim(self) -> None:
        """Bound what a long outage keeps (the caller holds the lock): the oldest rows go first, counted."""
        overflow = sum(len(ids) for _, ids in self._failed.values()) - self.max_pending_rows
        if overflow > 0:
            self.dropped_rows += overflow
            log.error("inference log: dropping the %d oldest unwritten row(s); the store keeps failing", overflow)
        for key in list(self._failed):  # groups in the order their first answer came
            if overflow <= 0:
                break
            batches, ids = self._failed[key]
            while batches and overflow > 0:
                cut = min(overflow, batches[0].num_rows)
                overflow -= cut
                del ids[:cut]
                batches[0] = batches[0].slice(cut)
                if batches[0].num_rows == 0:
                    batches.pop(0)
            if not ids:
                del self._failed[key]
        while self._recent and self._recent_count - len(self._recent[0]) >= self._recent_ids:
            self._recent_count -= len(self._recent.popleft())

    # --- lookup -----------------------------------------------------------------------------------------------

    def find(self, prediction_id: str, systems: Iterable[str]) -> dict[str, Any] | None:
        """The logged row of `prediction_id`: still buffered, recently written by this process, or in the files
        of the hour its id names (other processes, earlier runs)."""
        # The deque before the writer process's batches: a row is put into those before it leaves the deque.
        handed_over = [list(self._pending)]
        if self._process is not None:
            handed_over += self._process.batches()
        for records in handed_over:
            for record in records:
                if record[0] == prediction_id:
                    return encode(record)
        with self._lock:
            held = [*self._groups.values(), *self._failed.values(), *(g for w in self._writing for g in w.values())]
        for batches, ids in held:
            if prediction_id in ids:
                import pyarrow as pa

                table = pa.Table.from_batches(batches, schema=arrow_schema())
                return table.slice(ids.index(prediction_id), 1).to_pylist()[0]
        if self._process is not None:  # the writer process's files, found by their ids' ranges and read once
            found = self._process.written_row(prediction_id)
            if found is not None:
                return found[1]
        else:
            key = self.written_file(prediction_id)
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

    def written_file(self, prediction_id: str) -> str | None:
        """The key of the file this process wrote `prediction_id` to, among its last `recent_ids` answers."""
        recent = list(self._recent)  # a copy: the writer thread appends meanwhile
        found = next((files[prediction_id] for files in reversed(recent) if prediction_id in files), None)
        if found is None and self._process is not None:
            found = (self._process.written_row(prediction_id) or (None,))[0]
        return found

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
