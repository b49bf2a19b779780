"""Runs the bootstraps start: a failed step is named with its error, not a bare `assert result.success`."""

from __future__ import annotations

import dagster as dg

from mlops_assets.common.runs import execute, failures


@dg.asset
def fine() -> int:
    return 1


@dg.asset
def broken(fine: int) -> int:
    raise ValueError(f"column 'fare' is missing (after {fine} good step)\nsecond line of detail")


def test_the_failed_steps_and_their_first_error_lines_are_named():
    definitions = dg.Definitions(
        assets=[fine, broken], jobs=[dg.define_asset_job("both")], executor=dg.in_process_executor
    )
    job = definitions.resolve_job_def("both")
    with dg.DagsterInstance.ephemeral() as instance:
        result = execute(job, instance, raise_on_error=False)
        assert not result.success
        said = failures(instance, result.run_id)
    assert said.startswith("broken: ") and "column 'fare' is missing (after 1 good step)" in said
    assert "second line" not in said and "fine" not in said
