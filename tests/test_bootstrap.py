"""The bootstrap's console: one line per system, the runs' own output (Dagster's event stream) in a log file."""

import sys
import types

from mlops_assets import bootstrap


def test_one_console_line_per_step_and_the_output_in_each_system_log(tmp_path, monkeypatch, capfd):
    def quiet_system(definitions, instance):
        print("DEBUG - STEP_START - noise a user should not see")
        print("a warning", file=sys.stderr)

    def broken_system(definitions, instance):
        print("DEBUG - STEP_FAILURE")
        try:
            raise KeyError("passengers.csv")
        except KeyError as error:
            raise RuntimeError("Error occurred while executing op") from error

    monkeypatch.setattr(bootstrap, "system_bootstraps", lambda: [("quiet", quiet_system), ("broken", broken_system)])
    monkeypatch.setitem(sys.modules, "mlops_assets.definitions", types.SimpleNamespace(defs=lambda: None))
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "mlops"))
    (tmp_path / "dagster").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.chdir(tmp_path)

    assert bootstrap.main([]) == 1
    console = capfd.readouterr()
    assert console.out.splitlines() == [
        "[bootstrap] quiet: materializing",
        "[bootstrap] quiet: done in 0 s",
        "[bootstrap] broken: materializing",
        "[bootstrap] broken: failed after 0 s: KeyError: 'passengers.csv' (log: mlops/logs/bootstrap-broken.log)",
    ]
    assert console.err == ""
    logs = tmp_path / "mlops" / "logs"
    quiet_log = (logs / "bootstrap-quiet.log").read_text()
    assert "STEP_START" in quiet_log and "a warning" in quiet_log
    assert "STEP_FAILURE" in (logs / "bootstrap-broken.log").read_text()
    assert "Traceback" in (logs / "bootstrap-broken.log").read_text()
    assert (tmp_path / "mlops" / "bootstrapped" / "quiet").exists()
    assert not (tmp_path / "mlops" / "bootstrapped" / "broken").exists()

    assert bootstrap.main(["--only", "nope"]) == 2
    assert "no system named nope" in capfd.readouterr().out
