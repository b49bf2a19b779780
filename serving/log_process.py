"""The inference log's writer in a process of its own (`serving.log_writer`), fed through a pipe.

Why a process: turning ~17,000 answers a second into zstd Parquet costs about 3 µs an answer. In a thread of the
API it took the GIL from the event loop, and /classify's p99 under 16 clients rose 32-46 %
(scripts/bench_inference_log.py). Here the API only hands its rows over, in one `marshal` call every 20 ms (~0.3 µs
an answer), and the writer runs at `SCHED_IDLE`: it gets the CPU time the answers leave.

What is kept, and where, at every moment:
- answered, not yet handed over: the log's deque (at most 20 ms of answers);
- handed over, not yet confirmed written: `unconfirmed` here, each batch under a sequence number, searched by
  `GET /predictions/{id}` and sent again if the writer dies (kill -9 is healed: a new writer is started and given
  the batches; a row written just before the death may be written twice, and the ingest keeps one per id);
- written: the writer confirms the sequence number it wrote through, and each file with the range of its ids; a
  lookup reads the newest files whose range holds the id (`written_row`).
The writer ends when its pipe closes: at the API's shutdown, after writing everything, or when the API is killed,
after writing what it was given. So a SIGKILLed API loses at most its last 20 ms of answers.
Starvation: a writer whose rows stay unconfirmed for `STARVED_SECONDS` beyond the flush interval (the machine busy
with other work) is moved to normal priority until it has caught up, so the rows waiting here stay bounded in
time as well as in number.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import marshal
import os
import subprocess
import sys
import time

log = logging.getLogger("serving.inference_log")

STARVED_SECONDS = 5.0
RESTART_SECONDS = 2.0  # a writer that dies at once (a broken install) is restarted at most this often
PIPE_BYTES = 1 << 20  # a second's worth of frames waits in the pipe, not in the API


def frame(message) -> bytes:
    data = marshal.dumps(message)
    return len(data).to_bytes(4, "little") + data


class Frames:
    """Messages out of a byte stream of `frame`s, whatever the chunks it arrives in."""

    def __init__(self):
        self.buffer = bytearray()

    def feed(self, chunk: bytes) -> list:
        self.buffer += chunk
        messages, at = [], 0
        while len(self.buffer) - at >= 4:
            size = int.from_bytes(self.buffer[at : at + 4], "little")
            if len(self.buffer) - at - 4 < size:
                break
            messages.append(marshal.loads(self.buffer[at + 4 : at + 4 + size]))
            at += 4 + size
        del self.buffer[:at]
        return messages


def store_spec(store) -> tuple[str, str, dict] | None:
    """How the writer rebuilds the API's object store: its class and configuration; None if it cannot."""
    dump = getattr(store, "model_dump", None)
    if dump is None or "<locals>" in type(store).__qualname__:
        return None
    return type(store).__module__, type(store).__qualname__, dump()


def portable(rows: list[tuple], lineages: dict) -> list[tuple]:
    """The rows with every input, answer and lineage that is not already text or bytes as its JSON text (what the
    log stores); a lineage object is serialized once, kept in `lineages` by identity."""
    from serving.log_rows import lineage_text, to_json

    def text(value):
        return value if value is None or type(value) is str or type(value) is bytes else to_json(value)

    if len(lineages) > 64:  # models come and go
        lineages.clear()
    return [
        (
            str(pid),
            int(logged_us),
            str(system),
            str(route),
            text(model_name),
            None if model_version is None else str(model_version),
            text(inputs),
            text(output),
            text(lineage) if type(lineage) is str or lineage is None else lineage_text(lineage, lineages),
        )
        for pid, logged_us, system, route, model_name, model_version, inputs, output, lineage in rows
    ]


class WriterProcess:
    """The API's side: hands rows over, reads confirmations, restarts a dead writer (see the module's docstring)."""

    def __init__(self, inference_log, spec: tuple[str, str, dict]):
        self.log = inference_log
        self.spec = spec
        self.seq = 0
        # (seq, frame, rows in it, handed over at), oldest first. The frame, not the rows: the rows' objects (request
        # bodies among them) are freed as soon as they are marshalled, as with logging off.
        self.unconfirmed: collections.deque = collections.deque()
        self.unconfirmed_rows = 0
        self.outgoing: collections.deque = collections.deque()  # (seq, frame) not yet wholly in the pipe
        self.written_of_head = 0
        self.frames = Frames()
        self.process: subprocess.Popen | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing = False
        self.respawning = False  # a writer died at once: the next one starts a little later
        self.restarts = 0
        self.dropped_here = 0
        self.lineages: dict = {}  # id(lineage) -> (lineage, its JSON): a model's lineage is serialized once
        self.started_at = 0.0
        self.boosted = False
        self.files: collections.deque = collections.deque()  # (lowest id, highest id, rows, key) of confirmed files
        self.files_rows = 0
        self.counted = [0, 0, 0, 0]  # rows, files, failed writes, dropped rows of the writers before this one
        self.current = [0, 0, 0, 0]

    # --- lifecycle --------------------------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """The writer itself starts with the first answer to log: an API that logs nothing (a health check, the
        pages, most tests) starts no process and waits for none at shutdown."""
        self.loop = loop

    def _spawn(self) -> None:
        import fcntl

        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "serving.log_writer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # In the API's session, on purpose: a session of its own is a scheduling group of its own under Linux's
            # autogroups, with the API's share of the CPU whatever this process's priority (/classify's p99 with
            # logging: +51 to +82 % that way). It ignores Ctrl-C and SIGTERM to the group and ends with its pipe.
        )
        self.boosted = False
        settings = (self.spec, self.log.flush_seconds, self.log.max_pending_rows)
        self.process.stdin.write(frame(settings))
        self.process.stdin.flush()
        for pipe in (self.process.stdin, self.process.stdout):
            os.set_blocking(pipe.fileno(), False)
        # Not on Linux, or above the system's limit: the default pipe works too.
        with contextlib.suppress(AttributeError, OSError):
            fcntl.fcntl(self.process.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self.loop.add_reader(self.process.stdout.fileno(), self._read)

    async def run(self, every: float) -> None:
        while not self.closing:
            await asyncio.sleep(every)
            try:
                self.hand_over()
            except Exception:  # never let the sender die: the next round retries
                log.exception("inference log: handing rows to the writer failed")

    async def aclose(self, timeout: float = 60.0) -> None:
        """Hand over the rest, close the pipe, and wait (reading its confirmations) for the writer to finish."""
        self.hand_over()
        if self.process is None:  # nothing was ever logged
            self.closing = True
            return
        if self.respawning or self.process.poll() is not None:  # it died just now: a last one writes the rest
            self._restart(f"exited with {self.process.returncode}", at_once=True)
        self.closing = True
        deadline = time.monotonic() + timeout
        while self.outgoing and self.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            self._write()
        self.process.stdin.close()
        while self.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.process.poll() is None:
            log.error("inference log: the writer did not finish in %.0f s; %d row(s) unconfirmed", timeout, self.rows())
            self.process.kill()
        self._read()  # the last confirmations
        self.loop.remove_reader(self.process.stdout.fileno())
        self.process.stdout.close()
        self.process.wait()

    # --- rows out ---------------------------------------------------------------------------------------------

    def hand_over(self) -> None:
        pending = self.log._pending
        count = len(pending)
        if count:
            # Copied before they leave the deque, so that a lookup finds each row in one of the two at every moment.
            rows = [pending[i] for i in range(count)]
            self.seq += 1
            try:
                data = frame((self.seq, rows))
            except ValueError:  # objects marshal cannot carry (pydantic answers, numpy values): sent as JSON text
                data = frame((self.seq, portable(rows, self.lineages)))
            self.unconfirmed.append((self.seq, data, count, time.monotonic()))
            self.unconfirmed_rows += count
            self.outgoing.append((self.seq, data))
            for _ in range(count):
                pending.popleft()
            self._bound()
        if self.respawning:
            return
        if self.process is None:
            if not self.unconfirmed:
                return
            self._spawn()
        elif self.process.poll() is not None:
            self._restart(f"exited with {self.process.returncode}")
            return
        self._write()
        self._watch_priority()

    def _write(self) -> None:
        fd = self.process.stdin.fileno()
        while self.outgoing:
            data = self.outgoing[0][1]
            try:
                self.written_of_head += os.write(fd, memoryview(data)[self.written_of_head :])
            except BlockingIOError:  # the pipe is full: the writer is behind, the rest waits here
                return
            except OSError as exc:  # BrokenPipeError: the writer is gone
                self._restart(f"{type(exc).__name__}: {exc}")
                return
            if self.written_of_head == len(data):
                self.outgoing.popleft()
                self.written_of_head = 0

    def _bound(self) -> None:
        """At most `max_pending_rows` unconfirmed: the oldest go first. Rows already in the pipe stay the writer's
        (only not sent again); rows that never reached it are dropped and counted."""
        while self.unconfirmed_rows > self.log.max_pending_rows and len(self.unconfirmed) > 1:
            seq, _, count, _ = self.unconfirmed.popleft()
            self.unconfirmed_rows -= count
            if self.outgoing and self.outgoing[0][0] == seq and self.written_of_head == 0:
                self.outgoing.popleft()
                self.dropped_here += count
                self._count()
                log.error("inference log: the writer is not keeping up; dropped %d row(s)", count)

    def _watch_priority(self) -> None:
        waited = time.monotonic() - self.unconfirmed[0][3] if self.unconfirmed else 0.0
        starved = waited > STARVED_SECONDS + self.log.flush_seconds
        if starved != self.boosted:
            policy = os.SCHED_OTHER if starved else os.SCHED_IDLE
            try:
                os.sched_setscheduler(self.process.pid, policy, os.sched_param(0))
            except (AttributeError, OSError):
                return
            self.boosted = starved
            if starved:
                log.warning(
                    "inference log: rows unconfirmed for %.0f s (a writer given no CPU time, or a failing store): "
                    "the writer at normal priority until it catches up",
                    waited,
                )

    # --- confirmations in -------------------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            chunk = os.read(self.process.stdout.fileno(), 1 << 20)
        except BlockingIOError:
            return
        except (OSError, ValueError):  # closed
            chunk = b""
        if not chunk:
            self.loop.remove_reader(self.process.stdout.fileno())
            if not self.closing:
                self._restart("closed its pipe")
            return
        for through, files, counters in self.frames.feed(chunk):
            # Each file by the range of its ids, not id by id: a dict of a second's 17,000 ids, built and later
            # freed on the event loop, cost /classify's p99 more than the rest of logging.
            for name, lowest, highest, count in files:
                self.files.append((lowest, highest, count, name))
                self.files_rows += count
            while self.files and self.files_rows - self.files[0][2] >= self.log._recent_ids:
                self.files_rows -= self.files.popleft()[2]
            while self.unconfirmed and self.unconfirmed[0][0] <= through:
                self.unconfirmed_rows -= self.unconfirmed.popleft()[2]
            self.current = list(counters)
            self._count()

    def _count(self) -> None:
        """The log's counters: every writer's so far, and the rows this side dropped."""
        rows, files, failed, dropped = (before + now for before, now in zip(self.counted, self.current, strict=True))
        self.log.rows_written, self.log.files_written, self.log.failed_writes = rows, files, failed
        self.log.dropped_rows = dropped + self.dropped_here

    def _restart(self, why: str, at_once: bool = False) -> None:
        if self.closing:
            return
        if self.respawning:  # the old one is cleaned up already; its successor waits for its time
            if at_once:
                self._respawn(why)
            return
        old = self.process
        with contextlib.suppress(OSError, ValueError):
            self.loop.remove_reader(old.stdout.fileno())
        if old.poll() is None:
            old.kill()
        old.wait()
        for pipe in (old.stdin, old.stdout):
            with contextlib.suppress(OSError):
                pipe.close()
        self.counted = [c + n for c, n in zip(self.counted, self.current, strict=True)]
        self.current = [0, 0, 0, 0]
        wait = RESTART_SECONDS - (time.monotonic() - self.started_at)
        if wait > 0 and not at_once:  # it died at once: try again a little later, the rows wait here meanwhile
            self.respawning = True
            self.loop.call_later(wait, self._respawn, why)
            return
        self._respawn(why)

    def _respawn(self, why: str) -> None:
        if self.closing or (self.process.poll() is None):
            return
        self.respawning = False
        self.restarts += 1
        log.warning(
            "inference log: the writer %s; started a new one and handed it the %d unconfirmed row(s)",
            why,
            self.unconfirmed_rows,
        )
        self.frames = Frames()
        self._spawn()
        self.outgoing = collections.deque((seq, data) for seq, data, _, _ in self.unconfirmed)
        self.written_of_head = 0
        self._write()

    # --- lookup -----------------------------------------------------------------------------------------------

    def rows(self) -> int:
        return self.unconfirmed_rows

    def batches(self) -> list[list[tuple]]:
        """The rows handed over and not yet confirmed written (unmarshalled again: lookups are rare)."""
        return [marshal.loads(memoryview(data)[4:])[1] for _, data, _, _ in list(self.unconfirmed)]

    def written_row(self, prediction_id: str) -> tuple[str, dict] | None:
        """The confirmed file that holds `prediction_id`, and its row: the newest files whose ids' range holds it."""
        from serving.log_rows import read_rows

        for lowest, highest, _, name in reversed(list(self.files)):
            if lowest <= prediction_id <= highest:
                rows = read_rows(self.log.store.get_bytes(name), prediction_id)
                if rows:
                    return name, rows[0]
        return None
