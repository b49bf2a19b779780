"""`devtools.supervise` with small real processes: restart with backoff, giving up on a crash loop, and no
process left behind (grandchildren included) on any way out."""

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from devtools import supervise
from devtools.supervise import Child, GaveUp, Supervisor, port_in_use
from tests.support import REPO_ROOT

# Sleeps forever after starting a grandchild in its own process group (as Dagster's code servers are).
SLEEPER = (
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
    "print('up', flush=True); time.sleep(600)"
)

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to see process groups")


def members(group: int) -> list[int]:
    return [pid for pid in supervise._pids() if supervise._runs_in_group(pid, group)]


def wait(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def supervisor(tmp_path):
    lines: list[str] = []
    sup = Supervisor(REPO_ROOT, dict(os.environ), lines.append, poll_seconds=0.05)
    sup.lines = lines
    yield sup
    sup.stop_all()
    assert not any(supervise.group_alive(g) for g in sup.groups)


def test_a_killed_child_is_restarted_and_the_others_keep_running(supervisor, tmp_path):
    victim = supervisor.add(Child("victim", [sys.executable, "-c", SLEEPER], tmp_path / "victim.log"))
    other = supervisor.add(Child("other", [sys.executable, "-c", SLEEPER], tmp_path / "other.log"))
    wait(lambda: len(members(victim.process.pid)) == 2 and len(members(other.process.pid)) == 2)
    first, other_pid = victim.process.pid, other.process.pid

    os.kill(first, signal.SIGKILL)
    supervisor.wait_until(lambda: victim.process.pid != first and victim.process.poll() is None, timeout=30)
    assert "victim exited with -9; restarting in 1 s (restart 1)" in supervisor.lines
    assert other.process.pid == other_pid and other.process.poll() is None
    # The grandchild of the killed leader is still tracked: stop_all (in the fixture) ends it too.
    assert first in supervisor.groups and members(first)


def test_a_crash_loop_gives_up_with_growing_backoff(supervisor, tmp_path, monkeypatch):
    monkeypatch.setattr(supervise, "MAX_QUICK_CRASHES", 3)
    supervisor.add(Child("crasher", [sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path / "c.log"))
    with pytest.raises(GaveUp, match="crasher exited with 3 3 times in a row"):
        supervisor.wait_until(lambda: False, timeout=60)
    assert [line for line in supervisor.lines if "restarting" in line] == [
        "crasher exited with 3; restarting in 1 s (restart 1)",
        "crasher exited with 3; restarting in 2 s (restart 2)",
    ]


def test_stop_all_ends_every_group_even_a_child_ignoring_sigterm(tmp_path, monkeypatch):
    monkeypatch.setattr(supervise, "STOP_GRACE_SECONDS", 1.0)
    sup = Supervisor(REPO_ROOT, dict(os.environ), print, poll_seconds=0.05)
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"
    )
    children = [
        sup.add(Child("plain", [sys.executable, "-c", SLEEPER], tmp_path / "a.log")),
        sup.add(Child("stubborn", [sys.executable, "-c", stubborn], tmp_path / "b.log")),
    ]
    once = sup.run_once([sys.executable, "-c", SLEEPER])
    wait(lambda: all(b"up" in (tmp_path / f).read_bytes() for f in ("a.log", "b.log")))
    groups = [c.process.pid for c in children] + [once.pid]
    assert all(members(g) for g in groups)
    sup.stop_all()
    assert [members(g) for g in groups] == [[], [], []]
    once.wait(timeout=5)


def test_port_in_use_sees_a_listening_socket():
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert port_in_use(port)
    assert not port_in_use(port)


def test_stop_all_ends_a_grandchild_in_a_session_of_its_own(tmp_path):
    """Dagster's webserver and daemon start their code servers in sessions of their own: not in the child's group,
    and left to die by heartbeat when their parent is gone. stop_all ends them with the rest."""
    detached = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], start_new_session=True); "
        "print('grandchild', p.pid, flush=True); time.sleep(600)"
    )
    sup = Supervisor(REPO_ROOT, dict(os.environ), print, poll_seconds=0.05)
    sup.add(Child("parent", [sys.executable, "-c", detached], tmp_path / "a.log"))
    wait(lambda: b"grandchild" in (tmp_path / "a.log").read_bytes())
    grandchild = int((tmp_path / "a.log").read_text().split()[-1])
    assert supervise._stat(grandchild)[2] == str(grandchild)  # its own group, not the child's
    sup.stop_all()
    wait(lambda: supervise._stat(grandchild) is None or supervise._stat(grandchild)[0] == "Z", timeout=10)
