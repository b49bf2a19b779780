"""Process supervision for `python3 dev.py up`, standard library only (it runs before .venv exists).

Every child leads its own process group, so that Dagster's code servers and run workers, which stay in the group
of the process that started them, are stopped with it. A child that dies is restarted after a backoff; one that
keeps dying right after its start makes the supervisor give up and stop everything. Whatever ends `up`, every
group it started is gone afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# A run of at least this long counts as a healthy start: the next crash begins a new backoff series.
STABLE_SECONDS = 60.0
# Consecutive crashes before giving up (each within STABLE_SECONDS of its start).
MAX_QUICK_CRASHES = 5
MAX_BACKOFF_SECONDS = 30.0
STOP_GRACE_SECONDS = 15.0
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class Stop(BaseException):
    """Raised by the SIGINT/SIGTERM handler: unwinds to the caller, which stops everything."""


class GaveUp(Exception):
    """A child kept dying right after its start, or a server never answered."""


@dataclass
class Child:
    name: str  # as printed: "Dagster UI", "serving API"
    command: list[str]
    log: Path
    url: str | None = None  # printed when ready
    ready_url: str | None = None  # polled until it answers (http://..., or tcp://host:port for a bare socket)
    env: dict[str, str] = field(default_factory=dict)  # added to the supervisor's environment
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    quick_crashes: int = 0
    restarts: int = 0
    restart_at: float | None = None
    ready: bool = False


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        # SO_REUSEADDR ignores sockets of a server that just stopped (TIME_WAIT) but not a listening one.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def answers(url: str) -> bool:
    if url.startswith("tcp://"):  # a server that speaks no HTTP (Redis): accepting connections is ready
        host, _, port = url.removeprefix("tcp://").rpartition(":")
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=2):
            return True
        return False
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except Exception:
        return False


def _child_signals() -> None:
    # A shell without job control starts background commands with SIGINT ignored, and children inherit that;
    # reset both so that our SIGTERM (and a terminal's Ctrl-C) really stops dagster and uvicorn.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


class Supervisor:
    def __init__(self, cwd: Path, env: dict[str, str], say: Callable[[str], None], poll_seconds: float = 0.5):
        self.cwd, self.env, self.say, self.poll_seconds = cwd, env, say, poll_seconds
        self.children: list[Child] = []
        self.groups: list[int] = []  # every group ever started, restarted children's old groups included

    # -- starting -------------------------------------------------------------------------------------------
    def popen(self, command: list[str], env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
        # Ctrl-C waits until the new group is on record, so that the stop that follows includes it.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            process = subprocess.Popen(
                command,
                cwd=self.cwd,
                env={**self.env, **(env or {})},
                start_new_session=True,
                preexec_fn=_child_signals,
                **kwargs,
            )
            self.groups.append(process.pid)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        return process

    def add(self, child: Child) -> Child:
        self.children.append(child)
        self._start(child)
        return child

    def _start(self, child: Child) -> None:
        child.log.parent.mkdir(parents=True, exist_ok=True)
        with open(child.log, "ab") as log:
            child.process = self.popen(child.command, child.env, stdout=log, stderr=subprocess.STDOUT)
        child.started_at, child.restart_at, child.ready = time.monotonic(), None, False

    def run_once(self, command: list[str], **kwargs) -> subprocess.Popen:
        """A one-shot process (install step, bootstrap) in its own group, stopped with the rest."""
        return self.popen(command, **kwargs)

    # -- watching ---------------------------------------------------------------------------------------------
    def check(self) -> None:
        """One round: notice deaths, restart children whose backoff is over, report servers becoming ready."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self._start(child)
                continue
            code = child.process.poll()
            if code is not None:
                self._died(child, code, now)
            elif not child.ready and child.ready_url and answers(child.ready_url):
                child.ready = True
                again = " again" if child.restarts else ""
                self.say(f"{child.name:<12} ready{again} at {child.url or child.ready_url}")

    def _died(self, child: Child, code: int, now: float) -> None:
        # Forget groups that are gone, so that a later stop never signals a recycled group id.
        self.groups = [g for g in self.groups if group_alive(g)]
        if now - child.started_at >= STABLE_SECONDS:
            child.quick_crashes = 0
        child.quick_crashes += 1
        if child.quick_crashes >= MAX_QUICK_CRASHES:
            raise GaveUp(
                f"{child.name} exited with {code} {child.quick_crashes} times in a row within "
                f"{STABLE_SECONDS:.0f} s of its start; see {child.log}"
            )
        delay = min(MAX_BACKOFF_SECONDS, 2.0 ** (child.quick_crashes - 1))
        child.restart_at = now + delay
        # Helpers left in its group (a code server) stop on their own once their parent's heartbeat ends;
        # run workers finish their run. Final cleanup still takes the old group.
        self.say(f"{child.name} exited with {code}; restarting in {delay:.0f} s (restart {child.restarts + 1})")

    def wait_until(self, condition: Callable[[], bool], timeout: float | None = None, what: str = "") -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.check()
            if condition():
                return
            if deadline is not None and time.monotonic() > deadline:
                raise GaveUp(f"{what} not ready within {timeout:.0f} s")
            time.sleep(self.poll_seconds)

    def wait_ready(self, timeout: float) -> None:
        pending = [c for c in self.children if c.ready_url]
        self.wait_until(
            lambda: all(c.ready for c in pending),
            timeout,
            " and ".join(c.name for c in pending if not c.ready) or "servers",
        )

    # -- stopping ---------------------------------------------------------------------------------------------
    def stop_all(self) -> None:
        """SIGTERM every group, SIGKILL what is left after the grace period, reap the leaders.

        Dagster starts its code servers in process groups of their own; a webserver that is SIGKILLed after the
        grace period leaves them to die by heartbeat 20 s later. Their groups are signalled too."""
        self.groups = list(dict.fromkeys([*self.groups, *descendant_groups(self.groups)]))
        signal_groups(self.groups, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        leaders = [c.process for c in self.children if c.process is not None]
        while time.monotonic() < deadline and any(group_alive(g) for g in self.groups):
            for process in leaders:
                process.poll()  # reap exited leaders so their group can empty
            time.sleep(0.2)
        signal_groups([g for g in self.groups if group_alive(g)], signal.SIGKILL)
        for process in leaders:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)


def stop_on_signals() -> None:
    """From now on SIGINT and SIGTERM raise Stop in the main thread (once: the cleanup that follows ignores
    them, and has its own deadline)."""

    def handler(*_: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def signal_groups(groups: list[int], sig: int) -> None:
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc"):
        return True  # cannot tell members from a zombie leader here: let the deadline decide
    # A zombie leader keeps the group "alive" until reaped; only members that still run count.
    return any(_runs_in_group(pid, group) for pid in _pids())


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()] if os.path.isdir("/proc") else []


def _runs_in_group(pid: int, group: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z" and int(fields[2]) == group


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendant_groups(groups: list[int]) -> list[int]:
    """The process groups of every running descendant of the members of `groups` (Linux /proc; else none)."""
    parents: dict[int, list[int]] = {}
    group_of: dict[int, int] = {}
    for pid in _pids():
        fields = _stat(pid)
        if fields is None or fields[0] == "Z":
            continue
        parents.setdefault(int(fields[1]), []).append(pid)
        group_of[pid] = int(fields[2])
    todo = [pid for pid, group in group_of.items() if group in groups]
    found: list[int] = []
    while todo:
        pid = todo.pop()
        for child in parents.get(pid, []):
            todo.append(child)
            if group_of[child] not in groups and group_of[child] not in found:
                found.append(group_of[child])
    return found
