"""The test suite's own rules: under MLOPS_STRICT=1 (set by CI) a missing dataset or browser fails the test that
needs it instead of skipping it."""

import pytest

from tests import support


@pytest.mark.parametrize(
    "value, outcome", [("1", pytest.fail.Exception), ("", pytest.skip.Exception), ("0", pytest.skip.Exception)]
)
def test_missing_real_data_skips_or_fails_by_the_strict_setting(tmp_path, monkeypatch, value, outcome):
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path / "absent"))
    monkeypatch.setenv("MLOPS_STRICT", value)
    with pytest.raises(outcome, match="real datasets not available"):
        support.require_shared_data()


def test_present_real_data_is_returned_in_either_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    for value in ("1", ""):
        monkeypatch.setenv("MLOPS_STRICT", value)
        assert support.require_shared_data() == tmp_path.resolve()


def test_missing_chromium_fails_under_strict(monkeypatch):
    monkeypatch.setenv("MLOPS_STRICT", "1")
    with pytest.raises(pytest.fail.Exception, match="chromium is not installed.*MLOPS_STRICT=1"):
        support.skip_or_fail("Debian chromium is not installed (apt-get install chromium)")
