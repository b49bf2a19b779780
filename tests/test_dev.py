"""The README's first command: it brings the servers up, and Ctrl-C stops every process it started."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import REPO_ROOT, free_port


def processes_with(marker: str) -> list[int]:
    """Running processes whose environment carries `marker` (every descendant of `up` inherits it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes() and b"Z" != (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find every descendant")
def test_up_serves_and_ctrl_c_stops_everything(tmp_path):
    home = tmp_path / "mlops"
    ui, api = free_port(), free_port()
    env = {**os.environ, "MLOPS_HOME": str(home), "MLOPS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "dev.py", "up", "--no-bootstrap", "--ui-port", str(ui),
                                "--api-port", str(api)], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    marker = f"MLOPS_HOME={home}"
    try:
        lines = []
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "running; press Ctrl-C" in line:
                break
            assert process.poll() is None, "".join(lines)
        else:
            pytest.fail("up did not become ready:\n" + "".join(lines))
        assert httpx.get(f"http://127.0.0.1:{api}/health").json()["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{ui}/server_info").status_code == 200
        assert (home / "dagster_home" / "dagster.yaml").is_file()
        assert len(processes_with(marker)) >= 3  # webserver, daemon, API (and Dagster's code servers)

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert processes_with(marker) == []
    finally:
        if process.poll() is None:
            process.kill()
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)


def test_test_command_passes_pytest_options_through():
    result = subprocess.run([sys.executable, "dev.py", "test", "-q", "-x", "tests/resources/test_settings.py"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    rejected = subprocess.run([sys.executable, "dev.py", "up", "--bogus"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=60)
    assert rejected.returncode == 2 and "--bogus" in rejected.stderr
