"""Which deploy queue a process uses: the SQLite file of the embedded profile, or the shared PostgreSQL table.

`MLOPS_DEPLOY_QUEUE_URL` (settings.deploy_queue_url) decides, for API processes (serving.deploy) and consumer
processes (serving.deploy_consumer) alike; psycopg2 is imported only when the URL is set.
"""

from __future__ import annotations

from resources.settings import PlatformSettings


def open_deploy_queue(settings: PlatformSettings, lease_seconds: float = 60.0):
    """A `DeployQueue` or a `PgDeployQueue`: same methods, statuses and leases."""
    if settings.deploy_queue_url is None:
        from serving.deploy_queue import DeployQueue

        return DeployQueue(settings.home / "serving" / "deploy_queue.db", lease_seconds)
    from serving.deploy_queue_pg import PgDeployQueue

    return PgDeployQueue(settings.deploy_queue_url, lease_seconds)


def completion_waits(settings: PlatformSettings, queue):
    """What answers an API process's long polls on the shared table: per-id notifications from the server, since
    outcomes are written by consumers in other processes. None for the SQLite file, where the local QueueWorker
    wakes its own waiters (and re-reads rows for other processes' outcomes)."""
    if settings.deploy_queue_url is None:
        return None
    from serving.deploy_queue_pg import CompletionWaits

    return CompletionWaits(queue)
