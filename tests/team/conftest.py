"""A real PostgreSQL server (Debian's binaries) for the team profile's tests, one per session."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from devtools.team import LocalPostgres, postgres_bin_dir
from tests.support import free_port


def require_postgres() -> Path:
    found = postgres_bin_dir()
    if found is None:
        reason = "PostgreSQL binaries not installed (apt-get install postgresql; .ci/run does it)"
        if os.environ.get("MLOPS_STRICT") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def postgres():
    """A started cluster on 127.0.0.1 and a free port; stopped and removed after the session."""
    require_postgres()
    # Not under pytest's tmp folder: that is private to us, and as root the server runs as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="mlops-postgres-"))
    server = LocalPostgres(folder, port=free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
