"""The durable prediction queue of the deploy system: one SQLite file (WAL) under MLOPS_HOME.

The serving process never opens Dagster's DuckDB file, so requests live in their own small database. A row
starts PENDING and ends COMPLETE (with the value) or ERROR (with the message). Workers claim a row by writing
their id and a lease in one UPDATE, so no row is predicted twice while its worker lives; rows claimed by a
worker that died (same host, process gone) or whose lease ran out are claimed again after a restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PENDING, COMPLETE, ERROR = "PENDING", "COMPLETE", "ERROR"
MAX_ATTEMPTS = 3  # a request that keeps killing its worker ends as ERROR instead of looping forever

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id TEXT PRIMARY KEY,
    deployment    TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('PENDING', 'COMPLETE', 'ERROR')),
    request       TEXT NOT NULL,
    result        REAL,
    error         TEXT,
    model         TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    claimed_by    TEXT,
    lease_until   REAL,
    created_at    REAL NOT NULL,
    completed_at  REAL
);
CREATE INDEX IF NOT EXISTS predictions_pending ON predictions (status, created_at) WHERE status = 'PENDING';
"""


@dataclass(frozen=True)
class Job:
    prediction_id: str
    deployment: str
    request: dict
    attempts: int


@dataclass(frozen=True)
class Prediction:
    prediction_id: str
    deployment: str
    status: str
    request: dict
    result: float | None
    error: str | None
    model: dict | None
    attempts: int
    created_at: float
    completed_at: float | None


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _worker_is_dead(worker_id: str) -> bool:
    """True only when the claim was made on this host by a process that no longer exists."""
    host, _, rest = worker_id.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by someone else
        return False
    return False  # alive (or the pid was reused): the lease decides


def _switch_to_wal(conn: sqlite3.Connection, seconds: float = 10.0) -> None:
    """WAL mode, waiting for a process that switches the same new file at once: SQLite answers that one "database
    is locked" at once instead of waiting its busy timeout, and an API started beside another exited on it."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class DeployQueue:
    """Thread-safe access to the queue file: one connection per thread, WAL so readers never block writers."""

    def __init__(self, path: str | os.PathLike, lease_seconds: float = 60.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lease_seconds = lease_seconds
        self._local = threading.local()
        with self._connect() as conn:
            conn.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            _switch_to_wal(conn)
            # WAL + NORMAL: a commit survives a process crash; only an OS crash may lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
        return conn

    def enqueue(self, deployment: str, request: dict) -> str:
        prediction_id = uuid.uuid4().hex
        self._connect().execute(
            "INSERT INTO predictions (prediction_id, deployment, status, request, created_at) VALUES (?, ?, ?, ?, ?)",
            (prediction_id, deployment, PENDING, json.dumps(request), time.time()),
        )
        return prediction_id

    def recover(self) -> int:
        """Release rows claimed by workers that died on this host, so the next claim takes them at once."""
        conn = self._connect()
        rows = conn.execute(
            "SELECT DISTINCT claimed_by FROM predictions WHERE status = 'PENDING' AND claimed_by IS NOT NULL"
        ).fetchall()
        dead = [worker for (worker,) in rows if _worker_is_dead(worker)]
        released = 0
        for worker in dead:
            released += conn.execute(
                "UPDATE predictions SET claimed_by = NULL, lease_until = NULL "
                "WHERE status = 'PENDING' AND claimed_by = ?",
                (worker,),
            ).rowcount
        return released

    def claim(self, worker_id: str, deployments: Iterable[str] | None = None) -> Job | None:
        """Atomically take the oldest PENDING row that is unclaimed or whose lease expired."""
        conn = self._connect()
        now = time.time()
        filter_sql, params = "", []
        if deployments is not None:
            names = list(deployments)
            if not names:
                return None
            filter_sql = f" AND deployment IN ({','.join('?' * len(names))})"
            params = names
        row = conn.execute(
            "UPDATE predictions SET claimed_by = ?, lease_until = ?, attempts = attempts + 1 "
            "WHERE prediction_id = (SELECT prediction_id FROM predictions WHERE status = 'PENDING' "
            f"AND (claimed_by IS NULL OR lease_until < ?){filter_sql} ORDER BY created_at LIMIT 1) "
            "AND status = 'PENDING' RETURNING prediction_id, deployment, request, attempts",
            (worker_id, now + self.lease_seconds, now, *params),
        ).fetchone()
        if row is None:
            return None
        return Job(row[0], row[1], json.loads(row[2]), row[3])

    def _finish(
        self, job: Job, worker_id: str, status: str, result: float | None, error: str | None, model: dict | None
    ) -> bool:
        cursor = self._connect().execute(
            "UPDATE predictions SET status = ?, result = ?, error = ?, model = ?, completed_at = ?, "
            "lease_until = NULL WHERE prediction_id = ? AND claimed_by = ? AND status = 'PENDING'",
            (status, result, error, json.dumps(model) if model else None, time.time(), job.prediction_id, worker_id),
        )
        return cursor.rowcount == 1  # False: the lease expired and another worker owns the row now

    def complete(self, job: Job, worker_id: str, value: float, model: dict | None) -> bool:
        return self._finish(job, worker_id, COMPLETE, value, None, model)

    def fail(self, job: Job, worker_id: str, message: str, model: dict | None = None) -> bool:
        return self._finish(job, worker_id, ERROR, None, message[:2000], model)

    def get(self, prediction_id: str) -> Prediction | None:
        row = (
            self._connect()
            .execute(
                "SELECT prediction_id, deployment, status, request, result, error, model, attempts, created_at, "
                "completed_at FROM predictions WHERE prediction_id = ?",
                (prediction_id,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return Prediction(
            row[0],
            row[1],
            row[2],
            json.loads(row[3]),
            row[4],
            row[5],
            json.loads(row[6]) if row[6] else None,
            row[7],
            row[8],
            row[9],
        )

    def counts(self) -> dict[str, int]:
        rows = self._connect().execute("SELECT status, COUNT(*) FROM predictions GROUP BY status").fetchall()
        return {status: count for status, count in rows}

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class QueueWorker:
    """A thread of the serving process: wakes when a request is enqueued, predicts, records the outcome.

    `resolve(job) -> (model_record, predict)` captures the model version that answers (stored with the
    outcome) and a callable returning the value; either may raise on a bad request or model. The error path
    only writes the message, and if even that write fails the row stays PENDING under a lease, to be retried.
    """

    def __init__(
        self,
        queue: DeployQueue,
        resolve,
        ready_deployments,
        log,
        idle_seconds: float = 1.0,
        thread_setup=None,
        recheck_seconds: float = 0.25,
    ):
        self.queue = queue
        self.thread_setup = thread_setup  # runs first inside the worker thread (per-thread settings)
        self.resolve = resolve
        self.ready_deployments = ready_deployments  # () -> names whose model is loaded
        self.log = log
        self.idle_seconds = idle_seconds
        self.recheck_seconds = recheck_seconds  # long polls re-read the row this often (other processes' outcomes)
        self.worker_id = new_worker_id()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = set()  # long polls, woken per outcome
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        released = self.queue.recover()
        if released:
            self.log.info("released %d prediction(s) claimed by a dead worker", released)
        self._thread = threading.Thread(target=self._run, name="deploy-queue-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def process_one(self) -> bool:
        job = self.queue.claim(self.worker_id, self.ready_deployments())
        if job is None:
            return False
        if job.attempts > MAX_ATTEMPTS:
            self.queue.fail(job, self.worker_id, f"gave up after {MAX_ATTEMPTS} attempts that did not finish")
            return True
        model_record = None
        try:
            model_record, predict = self.resolve(job)
            value = predict()
        except Exception as exc:  # the user's model or input: recorded on the row, the worker goes on
            self._record_error(job, f"{type(exc).__name__}: {exc}", model_record)
            self._notify()
            return True
        try:
            self.queue.complete(job, self.worker_id, value, model_record)
        except sqlite3.Error:
            self.log.exception(
                "could not record prediction %s; it stays PENDING and will be retried", job.prediction_id
            )
        self._notify()
        return True

    def _notify(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, set()
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    async def wait_finished(self, prediction_id: str, timeout: float) -> Prediction | None:
        """The row once it is no longer PENDING, or as it is after `timeout` seconds.

        Waits on the event loop itself (no thread held): the worker resolves the waiters' futures after every
        outcome it writes, so a long poll answers within a loop iteration of the COMPLETE write."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            future = loop.create_future()
            with self._lock:  # registered before the read: an outcome written in between still wakes us
                self._waiters.add((loop, future))
            try:
                row = self.queue.get(prediction_id)
                remaining = deadline - loop.time()
                if row is None or row.status != PENDING or remaining <= 0:
                    return row
                # Short waits too: rows finished by workers of other processes notify nobody here.
                await asyncio.wait([future], timeout=min(remaining, self.recheck_seconds))
            finally:
                with self._lock:
                    self._waiters.discard((loop, future))

    def _record_error(self, job: Job, message: str, model_record: dict | None) -> None:
        try:
            self.queue.fail(job, self.worker_id, message, model_record)
        except sqlite3.Error:
            self.log.exception(
                "could not record the error of %s; it stays PENDING and will be retried", job.prediction_id
            )

    def _run(self) -> None:
        if self.thread_setup is not None:
            self.thread_setup()
        while not self._stop.is_set():
            # Clear before claiming: an enqueue racing with the claim sets the event again, so nothing waits.
            self._wake.clear()
            try:
                busy = self.process_one()
            except Exception:
                self.log.exception("queue worker iteration failed")
                busy = False
            if not busy:
                # The timeout also picks up rows enqueued by other processes and models loaded later.
                self._wake.wait(self.idle_seconds)


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
