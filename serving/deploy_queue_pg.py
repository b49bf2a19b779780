"""The deploy queue in PostgreSQL: one table that several API processes and consumer processes, on any hosts, share.

Same interface, statuses, leases and attempt counting as `serving.deploy_queue.DeployQueue` (the SQLite file of
the embedded profile), so `QueueWorker` drives either. What PostgreSQL changes:

- A claim is one `UPDATE ... WHERE prediction_id = (SELECT ... FOR UPDATE SKIP LOCKED)`: concurrent claimers each
  lock a different PENDING row instead of queueing behind one, and a row locked by a claim in flight is skipped,
  not handed out twice.
- Times (leases, created/completed) come from the server's clock, so hosts with skewed clocks agree on expiry.
- A claim records the server pid of the claiming connection. When a consumer dies (SIGKILL, OOM, a host lost),
  the server closes its connection; `recover()` then releases its rows at once, whichever host it ran on, instead
  of waiting for the lease. A pid that still exists (or a transaction-mode pooler that keeps backends alive)
  only means the lease decides, as with SQLite.
- Enqueue sends `NOTIFY deploy_queue`, so consumers that `LISTEN` (serving.deploy_consumer) wake at once; an
  outcome sends `NOTIFY deploy_queue_done` with its id, so an API process answers a long poll as soon as any
  process wrote the outcome (`CompletionWaits`), not at its next re-read.

Guarantee (as with SQLite): a row ends COMPLETE or ERROR exactly once, because the outcome is written only by the
current claimer of a still-PENDING row. A claimer that dies or overruns its lease may have predicted a row that
another worker then predicts again; only one outcome is stored, the late one is refused (`complete` -> False).
"""

from __future__ import annotations

import asyncio
import logging
import select
import threading
import uuid
from collections.abc import Iterable

import psycopg2
import psycopg2.extensions
from psycopg2.extras import Json

from serving.deploy_queue import COMPLETE, ERROR, PENDING, Job, Prediction, _worker_is_dead

__all__ = ["COMPLETE", "ERROR", "PENDING", "CompletionWaits", "PgDeployQueue", "listen"]

log = logging.getLogger("serving.deploy")
CHANNEL = "deploy_queue"  # payload-less: a row was enqueued
DONE_CHANNEL = "deploy_queue_done"  # payload: the prediction id whose outcome was just written
TABLE = "deploy_predictions"
NOW = "EXTRACT(EPOCH FROM clock_timestamp())::float8"  # seconds since the epoch, like time.time() in the SQLite queue
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    prediction_id   TEXT PRIMARY KEY,
    deployment      TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('PENDING', 'COMPLETE', 'ERROR')),
    request         JSONB NOT NULL,
    result          DOUBLE PRECISION,
    error           TEXT,
    model           JSONB,
    attempts        INTEGER NOT NULL DEFAULT 0,
    claimed_by      TEXT,
    claimed_backend INTEGER,
    claimed_at      DOUBLE PRECISION,
    lease_until     DOUBLE PRECISION,
    created_at      DOUBLE PRECISION NOT NULL,
    completed_at    DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS {TABLE}_pending ON {TABLE} (created_at) WHERE status = 'PENDING';
"""
SCHEMA_LOCK = 0x6D6C6F7073  # advisory lock id: concurrent first starts must not race on CREATE TABLE IF NOT EXISTS


def libpq_url(url: str) -> str:
    """SQLAlchemy's `postgresql+psycopg2://` spelling (the platform's setting) as the URI libpq understands."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith(("postgresql", "postgres")) else url


def connect(url: str):
    conn = psycopg2.connect(libpq_url(url), application_name="mlops-deploy-queue")
    conn.autocommit = True  # every statement below is one atomic statement
    return conn


class PgDeployQueue:
    """Thread-safe access to the shared table: one connection per thread, opened on first use and reopened when
    the server dropped it. Errors are psycopg2's; a worker that cannot write an outcome leaves the row PENDING
    under its lease, to be claimed again (QueueWorker logs the failed iteration)."""

    def __init__(self, url: str, lease_seconds: float = 60.0):
        self.url = url
        self.lease_seconds = lease_seconds
        self._local = threading.local()
        self._all: list = []  # every thread's connection, closed together by close()
        self._all_lock = threading.Lock()
        with self._cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            cur.execute(SCHEMA)
            cur.execute("COMMIT")

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = connect(self.url)
            self._local.conn = conn
            with self._all_lock:
                self._all = [c for c in self._all if not c.closed] + [conn]
        return conn

    def _cursor(self):
        return _Cursor(self)

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and not conn.closed:
            conn.close()

    def enqueue(self, deployment: str, request: dict) -> str:
        prediction_id = uuid.uuid4().hex
        with self._cursor() as cur:
            # One simple query, so one implicit transaction: listeners are told once the row is visible.
            cur.execute(
                f"INSERT INTO {TABLE} (prediction_id, deployment, status, request, created_at) "
                f"VALUES (%s, %s, %s, %s, {NOW}); NOTIFY {CHANNEL}",
                (prediction_id, deployment, PENDING, Json(request)),
            )
        return prediction_id

    def recover(self) -> int:
        """Release rows whose claimer is gone: its server connection closed (any host), or a dead pid on this host."""
        with self._cursor() as cur:
            # The time first, then the live backends (a later transaction, so a later snapshot): a claim made before
            # that time by a backend missing from the list was made by a connection that has closed since.
            cur.execute(f"SELECT {NOW}")
            (listed_at,) = cur.fetchone()
            cur.execute("SELECT array_agg(pid) FROM pg_stat_activity")
            (alive,) = cur.fetchone()
            cur.execute(
                f"UPDATE {TABLE} SET claimed_by = NULL, claimed_backend = NULL, lease_until = NULL "
                "WHERE status = 'PENDING' AND claimed_by IS NOT NULL AND claimed_at < %s "
                "AND NOT (claimed_backend = ANY(%s))",
                (listed_at, alive or []),
            )
            released = cur.rowcount
            cur.execute(f"SELECT DISTINCT claimed_by FROM {TABLE} WHERE status = 'PENDING' AND claimed_by IS NOT NULL")
            dead = [worker for (worker,) in cur.fetchall() if _worker_is_dead(worker)]
            if dead:
                cur.execute(
                    f"UPDATE {TABLE} SET claimed_by = NULL, claimed_backend = NULL, lease_until = NULL "
                    "WHERE status = 'PENDING' AND claimed_by = ANY(%s)",
                    (dead,),
                )
                released += cur.rowcount
        return released

    def claim(self, worker_id: str, deployments: Iterable[str] | None = None) -> Job | None:
        """Atomically take the oldest PENDING row that is unclaimed or whose lease expired."""
        filter_sql, params = "", []
        if deployments is not None:
            names = list(deployments)
            if not names:
                return None
            filter_sql, params = " AND deployment = ANY(%s)", [names]
        with self._cursor() as cur:
            cur.execute(
                f"UPDATE {TABLE} SET claimed_by = %s, claimed_backend = pg_backend_pid(), claimed_at = {NOW}, "
                f"lease_until = {NOW} + %s, attempts = attempts + 1 "
                f"WHERE prediction_id = (SELECT prediction_id FROM {TABLE} WHERE status = 'PENDING' "
                f"AND (claimed_by IS NULL OR lease_until < {NOW}){filter_sql} "
                "ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) "
                "AND status = 'PENDING' RETURNING prediction_id, deployment, request, attempts",
                (worker_id, self.lease_seconds, *params),
            )
            row = cur.fetchone()
        if row is None:
            return None
        return Job(row[0], row[1], row[2], row[3])

    def _finish(
        self, job: Job, worker_id: str, status: str, result: float | None, error: str | None, model: dict | None
    ) -> bool:
        with self._cursor() as cur:
            # One statement: the outcome and, only if it was written, the notification (delivered at commit).
            cur.execute(
                f"WITH done AS (UPDATE {TABLE} SET status = %s, result = %s, error = %s, model = %s, "
                f"completed_at = {NOW}, lease_until = NULL "
                "WHERE prediction_id = %s AND claimed_by = %s AND status = 'PENDING' RETURNING prediction_id) "
                f"SELECT pg_notify('{DONE_CHANNEL}', prediction_id) FROM done",
                (status, result, error, Json(model) if model else None, job.prediction_id, worker_id),
            )
            return cur.rowcount == 1  # False: the lease expired and another worker owns the row now

    def complete(self, job: Job, worker_id: str, value: float, model: dict | None) -> bool:
        return self._finish(job, worker_id, COMPLETE, value, None, model)

    def fail(self, job: Job, worker_id: str, message: str, model: dict | None = None) -> bool:
        return self._finish(job, worker_id, ERROR, None, message[:2000], model)

    def get(self, prediction_id: str) -> Prediction | None:
        with self._cursor() as cur:
            cur.execute(
                "SELECT prediction_id, deployment, status, request, result, error, model, attempts, created_at, "
                f"completed_at FROM {TABLE} WHERE prediction_id = %s",
                (prediction_id,),
            )
            row = cur.fetchone()
        return None if row is None else Prediction(*row)

    def counts(self) -> dict[str, int]:
        with self._cursor() as cur:
            cur.execute(f"SELECT status, COUNT(*) FROM {TABLE} GROUP BY status")
            return dict(cur.fetchall())

    def close(self) -> None:
        with self._all_lock:
            connections, self._all = self._all, []
        for conn in connections:
            if not conn.closed:
                conn.close()
        self._local = threading.local()


class _Cursor:
    """A cursor on this thread's connection; a connection the server or network broke is dropped, so the next
    call reconnects (the failed call still raises: its outcome is unknown to us)."""

    def __init__(self, queue: PgDeployQueue):
        self.queue = queue

    def __enter__(self):
        self.cursor = self.queue._connection().cursor()
        return self.cursor

    def __exit__(self, kind, error, traceback):
        self.cursor.close()
        if isinstance(error, psycopg2.OperationalError | psycopg2.InterfaceError):
            self.queue._drop_connection()
        return False


def listen(url: str, channel: str = CHANNEL):
    """A connection subscribed to `channel`: `select()` on it, then `poll()` and drain `notifies`."""
    conn = connect(url)
    with conn.cursor() as cur:
        cur.execute(f"LISTEN {channel}")
    return conn


class CompletionWaits:
    """The long polls of one API process, each woken when the server announces its row's outcome.

    Outcomes are written by consumers in other processes, which cannot wake this process's event loop: one thread
    LISTENs on `deploy_queue_done` and resolves the futures waiting for that id. Waiters still re-read their row
    every `recheck_seconds`, which covers a notification lost while the listening connection was re-opened."""

    def __init__(self, queue: PgDeployQueue, recheck_seconds: float = 1.0):
        self.queue = queue
        self.recheck_seconds = recheck_seconds
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Future]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="deploy-queue-completions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = listen(self.queue.url, DONE_CHANNEL)
                if select.select([conn], [], [], 0.5)[0]:
                    conn.poll()
                    done = {note.payload for note in conn.notifies}
                    conn.notifies.clear()
                    self._wake(done)
            except psycopg2.Error:
                log.warning("completion notifications interrupted; long polls re-read rows meanwhile", exc_info=True)
                if conn is not None:
                    conn.close()
                self._stop.wait(1.0)
        if conn is not None:
            conn.close()

    def _wake(self, prediction_ids: set[str]) -> None:
        with self._lock:
            woken = [w for pid in prediction_ids for w in self._waiters.pop(pid, ())]
        for loop, future in woken:
            loop.call_soon_threadsafe(_resolve, future)

    async def wait_finished(self, prediction_id: str, timeout: float) -> Prediction | None:
        """The row once it is no longer PENDING, or as it is after `timeout` seconds (QueueWorker's contract)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            future = loop.create_future()
            with self._lock:  # registered before the read: an outcome written in between still wakes us
                self._waiters.setdefault(prediction_id, set()).add((loop, future))
            try:
                row = self.queue.get(prediction_id)
                remaining = deadline - loop.time()
                if row is None or row.status != PENDING or remaining <= 0:
                    return row
                await asyncio.wait([future], timeout=min(remaining, self.recheck_seconds))
            finally:
                with self._lock:
                    waiting = self._waiters.get(prediction_id)
                    if waiting is not None:
                        waiting.discard((loop, future))
                        if not waiting:
                            del self._waiters[prediction_id]


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
