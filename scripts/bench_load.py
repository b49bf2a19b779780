"""What loading the code location and the serving app costs, against a bare `import dagster` in the same run.

Every run worker, UI "Reload definitions", `dagster` command and API start pays these imports, so each is timed
in a fresh interpreter: a bare `import dagster` (the floor no code location can go under), the code location
(`import mlops_assets.definitions` + `defs()`), and the serving app (`import serving.app` + `create_app()`, which
loads no model: the poller does that in the background once the server runs). The three are interleaved, run
after run, so a machine busy with something else slows all of them alike; the figures are medians, and the
ratios are what the goal is stated in (at most 2x a bare `import dagster`).

    .venv/bin/python scripts/bench_load.py [--runs 5] [--cwd PATH]

`measure_load(python, cwd)` returns the same figures as a dict for other scripts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# name -> the statements timed, from the first import to the object built
SNIPPETS = {
    "dagster": "import dagster",
    "fastapi": "import fastapi",
    "code_location": "import mlops_assets.definitions as d; d.defs()",
    "serving": "import serving.app as a; a.create_app()",
}
_TIMER = "import time; _t = time.perf_counter(); {code}; print('LOAD_SECONDS', time.perf_counter() - _t)"


def time_snippet(python: str, cwd: Path, code: str, env: dict[str, str]) -> float:
    """Seconds `code` takes in a fresh `python` started in `cwd` (whose packages come first on sys.path)."""
    result = subprocess.run([python, "-c", _TIMER.format(code=code)], cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{code!r} failed in {cwd}:\n{result.stderr[-3000:]}")
    line = next(line for line in result.stdout.splitlines() if line.startswith("LOAD_SECONDS "))
    return float(line.split()[1])


def measure_load(
    python: str | os.PathLike = sys.executable, cwd: str | os.PathLike = REPO, runs: int = 5
) -> dict[str, float]:
    """Medians (s) of `runs` fresh-process timings of every snippet, and the two ratios to a bare dagster import.

    Keys: `<name>_s` for each name in SNIPPETS, `code_location_ratio`, `serving_ratio`, `runs`.
    """
    cwd = Path(cwd)
    samples: dict[str, list[float]] = {name: [] for name in SNIPPETS}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as home:
        # All state in a throwaway home, offline, local store; no variable of the calling shell leaks in.
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("MLOPS_", "MLFLOW_", "DAGSTER_", "AWS_"))
        }
        env.update(MLOPS_HOME=home, MLOPS_OFFLINE="1", MLOPS_OBJECT_STORE="local", GIT_PYTHON_REFRESH="quiet")
        env.pop("PYTHONPATH", None)
        for name, code in SNIPPETS.items():  # one untimed pass: byte-code caches and the page cache are warm
            time_snippet(str(python), cwd, code, env)
        for _ in range(runs):
            for name, code in SNIPPETS.items():
                samples[name].append(time_snippet(str(python), cwd, code, env))
    figures: dict[str, float] = {f"{name}_s": statistics.median(values) for name, values in samples.items()}
    figures["code_location_ratio"] = figures["code_location_s"] / figures["dagster_s"]
    figures["serving_ratio"] = figures["serving_s"] / figures["dagster_s"]
    figures["runs"] = runs
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per figure (median is printed)")
    parser.add_argument("--cwd", default=str(REPO), help="checkout whose code is loaded (default: this one)")
    parser.add_argument("--python", default=sys.executable, help="interpreter (default: this one)")
    args = parser.parse_args()
    figures = measure_load(args.python, args.cwd, args.runs)
    print(f"median of {args.runs} fresh processes each, {args.cwd}")
    print(f"  bare import dagster                    {figures['dagster_s']:6.2f} s")
    print(f"  bare import fastapi                    {figures['fastapi_s']:6.2f} s")
    print(
        f"  code location (import + defs())        {figures['code_location_s']:6.2f} s"
        f"   {figures['code_location_ratio']:.1f}x dagster"
    )
    print(
        f"  serving app (import + create_app())    {figures['serving_s']:6.2f} s"
        f"   {figures['serving_ratio']:.1f}x dagster"
    )


if __name__ == "__main__":
    main()
