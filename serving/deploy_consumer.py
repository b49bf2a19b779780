"""A deploy queue consumer without HTTP: `python -m serving.deploy_consumer [--workers N]`.

Runs what the API's worker thread runs (the deployments watcher, `QueueWorker` and the inference log) in a process
of its own, so predictions scale apart from the API processes: start any number of them, on any hosts, against
the shared queue (`MLOPS_DEPLOY_QUEUE_URL`), and start the API processes with `MLOPS_DEPLOY_WORKER=0`. With the
SQLite file (no URL) it works too, on the API's host only.

The main thread waits for enqueue notifications (PostgreSQL `LISTEN`) to wake the workers at once, and every
`--recover-seconds` releases rows whose claimer died (its server connection closed), so a consumer killed with
SIGKILL loses nothing: its in-flight row is claimed again within that interval, or after its lease at worst.
SIGTERM or Ctrl-C stops the workers after their current prediction and flushes the inference log.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import threading
import time

log = logging.getLogger("serving.deploy_consumer")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serving.deploy_consumer", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="worker threads (predictions hold the GIL: 1-2)")
    parser.add_argument("--recover-seconds", type=float, default=2.0, help="how often dead claimers are looked for")
    parser.add_argument(
        "--poll-seconds", type=float, default=None, help="deployments refresh (MLOPS_SERVING_POLL_SECONDS)"
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.recover_seconds <= 0:
        parser.error("--recover-seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    from threadpoolctl import threadpool_limits

    from resources.model_bucket import build_model_bucket
    from resources.settings import PlatformSettings
    from serving.context import ServingContext
    from serving.deploy import resolver
    from serving.deploy_queue import QueueWorker
    from serving.deploy_served import DeploymentsWatcher
    from serving.queue_backend import open_deploy_queue

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = PlatformSettings.from_env()
    poll = args.poll_seconds or float(os.environ.get("MLOPS_SERVING_POLL_SECONDS", "1.0"))
    ctx = ServingContext.from_settings(settings, poll)
    watcher = ctx.poller.add(DeploymentsWatcher(ctx.store, build_model_bucket(settings), ctx.registry))
    queue = open_deploy_queue(settings)
    resolve = resolver(ctx, watcher)
    workers = [
        QueueWorker(queue, resolve, lambda: list(watcher.current), log, thread_setup=lambda: threadpool_limits(1))
        for _ in range(args.workers)
    ]

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    ctx.poller.start()
    ctx.inference_log.start()
    for worker in workers:
        worker.start()  # releases rows of dead claimers first
    log.info("consumer %s: %d worker(s) on %s", os.getpid(), len(workers), _describe(settings))
    notifications = _listener(settings)
    try:
        next_recover = time.monotonic() + args.recover_seconds
        while not stop.is_set():
            try:
                woken = _notified(notifications, min(0.5, max(0.0, next_recover - time.monotonic())))
            except Exception:  # the server dropped the listening connection: reopened at the next round
                log.warning("enqueue notifications interrupted", exc_info=True)
                notifications.close()
                notifications, woken = None, True
            if woken:
                for worker in workers:
                    worker.wake()
            if time.monotonic() >= next_recover:
                next_recover = time.monotonic() + args.recover_seconds
                try:
                    released = queue.recover()
                except Exception:  # the server may be restarting: the next round tries again
                    log.warning("could not look for dead claimers", exc_info=True)
                    released = 0
                if notifications is None:
                    notifications = _reopen(settings)
                if released:
                    log.info("released %d prediction(s) claimed by a dead consumer", released)
                    for worker in workers:
                        worker.wake()
    finally:
        for worker in workers:
            worker.stop()
        ctx.poller.stop()
        ctx.inference_log.stop()
        if notifications is not None:
            notifications.close()
        queue.close()
        log.info("consumer %s stopped", os.getpid())


def _describe(settings) -> str:
    if settings.deploy_queue_url is None:
        return f"the SQLite queue under {settings.home}"
    return "the shared PostgreSQL queue"


def _listener(settings):
    if settings.deploy_queue_url is None:
        return None  # SQLite: the workers' idle re-check picks up rows enqueued by the API process
    from serving.deploy_queue_pg import listen

    return listen(settings.deploy_queue_url)


def _reopen(settings):
    try:
        return _listener(settings)
    except Exception:
        log.warning("could not listen for enqueue notifications; workers re-check every second", exc_info=True)
        return None


def _notified(conn, timeout: float) -> bool:
    """Whether a row was enqueued within `timeout` seconds (always False without a listening connection)."""
    if conn is None:
        time.sleep(timeout)
        return False
    if not select.select([conn], [], [], timeout)[0]:
        return False
    conn.poll()
    got = bool(conn.notifies)
    conn.notifies.clear()
    return got


if __name__ == "__main__":
    main()
