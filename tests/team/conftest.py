"""A real PostgreSQL server (Debian's binaries) for the team profile's tests, one per session; and the whole team
profile started by `python3 dev.py up --profile team`, once per session, for the tests that need all of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from devtools.team import LocalPostgres, postgres_bin_dir
from tests.support import REPO_ROOT, free_port


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


def require_binary(name: str, hint: str) -> None:
    if shutil.which(name) is None and not Path(f"/usr/bin/{name}").exists():
        reason = f"{name} not installed ({hint}; .ci/run does it)"
        if os.environ.get("MLOPS_STRICT") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


TEAM_SYSTEMS = ("titanic", "pistachio")
# The bootstrap as `up` runs it, with two days of Titanic history instead of seven (each day is a run: the same
# code path, a third of the time).
BOOTSTRAP = (
    "import sys, mlops_assets.titanic.bootstrap as titanic; titanic.BOOTSTRAP_DAYS = 2; "
    "from mlops_assets.bootstrap import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture(scope="module")
def team_platform():
    """The whole team profile started once by its own launcher (tests/team/launcher.py), Titanic and Pistachio
    bootstrapped in the environment it hands its children; stopped with SIGTERM after its module, so that its
    dozen processes do not idle beside the rest of the worker's tests."""
    from tests.support import require_shared_data
    from tests.team.launcher import launched

    require_postgres()
    require_binary("redis-server", "apt-get install redis-server")
    data = require_shared_data()
    # Not under pytest's tmp folder: as root, PostgreSQL runs as the postgres user, which must reach its cluster.
    home = Path(tempfile.mkdtemp(prefix="mlops-team-"))
    home.chmod(0o755)
    try:
        with launched(home, data) as platform:
            bootstrap = subprocess.run(
                [sys.executable, "-c", BOOTSTRAP, "--only", *TEAM_SYSTEMS],
                cwd=REPO_ROOT,
                env=platform.env,
                capture_output=True,
                text=True,
                timeout=1500,
            )
            assert bootstrap.returncode == 0, bootstrap.stdout + bootstrap.stderr[-3000:]
            yield platform
    finally:
        shutil.rmtree(home, ignore_errors=True)
