"""Threads of a fresh process reaching the registry at once (an API's watchers and requests just after start)."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO_ROOT

# Four threads released together in an interpreter that has not imported mlflow yet. Before the registry imported
# mlflow under a lock, every run of this failed: "partially initialized module 'mlflow'", a _DeadlockError in
# mlflow's protos, "cannot import name 'MlflowException'".
PROBE = """
import sys, tempfile, threading
from resources.mlflow_registry import MlflowRegistry

folder = tempfile.mkdtemp()
barrier, errors = threading.Barrier(4), []

def reach(i):
    registry = MlflowRegistry(tracking_uri=f"sqlite:///{folder}/mlflow.db", artifact_root=folder)
    barrier.wait()
    try:
        registry.activate() if i % 2 else registry.version_by_alias("nothing")
    except Exception as exc:
        errors.append(repr(exc)[:200])

threads = [threading.Thread(target=reach, args=(i,)) for i in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(errors)
sys.exit(1 if errors else 0)
"""


def test_threads_reaching_the_registry_at_once_all_get_a_whole_mlflow():
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr[-2000:]
