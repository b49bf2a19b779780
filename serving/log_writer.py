"""The inference log's writer process (`python -m serving.log_writer`), started by the API (serving.log_process).

Reads the API's batches of answered rows on stdin and writes them as the log's Parquet files every
`flush_seconds` (or once `FILE_ROWS` wait), with the same encoder and the same handling of a failing store as the
in-process writer. Not every `buffer_rows`, as the in-process writer does: that bound limits what a crash of the
API loses, and here the API's answers leave its memory within 20 ms. A file costs much the same work whatever its
size: files four times a second at /classify's rate made its p99 with logging +19 to +53 % instead of -2 to +10 %.
After each write it tells the API, on stdout, the last batch it has written through, and each file with the range
of its ids. It ends when stdin closes, once everything it was given is written (a store that still fails then gets
`FINAL_TRIES` more tries before the rest is reported lost).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import select
import signal
import sys
import time

FINAL_TRIES = 3
FILE_ROWS = 100_000  # the most rows held before a file is written: memory, not crash loss, bounds it


def idle_priority() -> None:
    """Only CPU time nobody else wants (the API moves it back to normal priority when it falls behind)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


def build_store(spec):
    module, qualname, config = spec
    owner = importlib.import_module(module)
    for part in qualname.split("."):
        owner = getattr(owner, part)
    return owner(**config)


def main() -> int:
    # The API's group gets Ctrl-C and SIGTERM; this process ends when the API closes the pipe, having written all.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    idle_priority()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    from serving.inference_log import InferenceLog
    from serving.log_process import Frames, frame

    source, sink = sys.stdin.fileno(), sys.stdout.fileno()
    frames = Frames()
    messages: list = []
    while not messages:
        chunk = os.read(source, 1 << 16)
        if not chunk:
            return 0
        messages = frames.feed(chunk)
    spec, flush_seconds, max_pending_rows = messages.pop(0)
    log = InferenceLog(build_store(spec), flush_seconds, FILE_ROWS, max_pending_rows, recent_ids=0)
    written: list[tuple[str, str, str, int]] = []
    # Each file by the range of its ids: the API finds an id's file from it (serving.log_process).
    log._remember = lambda name, ids: written.append((name, min(ids), max(ids), len(ids)))

    received = through = 0
    last_write = time.monotonic()
    open_ = True
    tries_left = FINAL_TRIES
    while True:
        for seq, rows in messages:
            log._pending.extend(rows)
            received = seq
        messages = []
        due = time.monotonic() - last_write >= flush_seconds or len(log._pending) >= FILE_ROWS
        if due or not open_:
            last_write = time.monotonic()
            log._encode_some(len(log._pending))
            log._write_encoded()
            if not log._failed:
                through = received
            counters = (log.rows_written, log.files_written, log.failed_writes, log.dropped_rows)
            # Blocking: the API reads as it serves. If the API is gone, the files are written all the same.
            with contextlib.suppress(OSError):
                data = memoryview(frame((through, written, counters)))
                while data:
                    data = data[os.write(sink, data) :]
            written = []
        if not open_:
            if not log._failed:
                return 0
            tries_left -= 1
            if tries_left == 0:
                logging.getLogger("serving.inference_log").error(
                    "inference log: %d row(s) lost: the store kept failing after the API closed",
                    log.unwritten_rows(),
                )
                return 1
            time.sleep(1.0)
            continue
        wait = max(0.0, flush_seconds - (time.monotonic() - last_write))
        if select.select([source], [], [], wait)[0]:
            chunk = os.read(source, 1 << 20)
            if chunk:
                messages = frames.feed(chunk)
            else:
                open_ = False


if __name__ == "__main__":
    sys.exit(main())
