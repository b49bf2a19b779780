"""Run tags shared by the systems and the instance configuration (dagster.yaml)."""

# Runs tagged with the same value of this key run one at a time: dagster.yaml's run coordinator limits each
# value to one run in progress (`applyLimitPerUniqueValue`). Runs executed in-process (the bootstrap) count too,
# since the coordinator counts every started run of the instance.
ONE_AT_A_TIME = "mlops/one_at_a_time"


def execute(
    job, instance, *, partition_key=None, tags=None, asset_selection=None, run_config=None, raise_on_error=True
):
    """Run `job` now, in this process as its run worker, with the executor the code location chose.

    `execute_in_process` always runs every step in this process. With another executor (Celery, in the team
    profile) the job is reconstructed from the code location so that each step can be loaded where it runs."""
    import dagster as dg

    if job.executor_def.name == dg.in_process_executor.name:
        return job.execute_in_process(
            instance=instance,
            partition_key=partition_key,
            tags=tags,
            asset_selection=asset_selection,
            run_config=run_config,
            raise_on_error=raise_on_error,
        )
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.execution.api import execute_run

    recon = ReconstructableRepository.for_module("mlops_assets.definitions", "defs").get_reconstructable_job(job.name)
    # The run is recorded from the definitions in hand before the code location is loaded again for execution
    # (seconds): a sensor deduplicating on run tags (Pistachio's) must see it as soon as the bootstrap asks.
    run = instance.create_run_for_job(
        job_def=job,
        run_config=run_config,
        tags={**job.run_tags, **(tags or {}), **({"dagster/partition": partition_key} if partition_key else {})},
        job_code_origin=recon.get_python_origin(),
        asset_selection=frozenset(asset_selection) if asset_selection else None,
    )
    with execute_run(recon, run, instance, raise_on_error=raise_on_error) as result:
        if raise_on_error and not result.success:
            # The steps failed in other processes: their errors are only in the event log, so say them here.
            raise RunFailed(f"run {run.run_id} of {job.name} failed: {failures(instance, run.run_id)}")
        return result


class RunFailed(RuntimeError):
    """A run whose steps ran in other processes (Celery workers) failed."""


def failures(instance, run_id: str) -> str:
    """The failed steps of a run and the first line of each error, from its event log."""
    import dagster as dg

    said = []
    for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        error = event.dagster_event.event_specific_data.error
        while error is not None and error.cause is not None:  # Dagster's wrapper, then the step's own error
            error = error.cause
        message = (error.message if error else event.message or "").strip().splitlines()
        said.append(f"{event.dagster_event.step_key}: {message[0][:500] if message else 'no message'}")
    return "; ".join(said) or "no step failed (see the run's events)"


def run_id_of(context) -> str:
    """The id of the run materializing an asset; "EPHEMERAL" when the asset is called directly on small frames
    (as the tests do), where `context.run` does not exist. `context.run_id` gives the same but is deprecated."""
    import dagster as dg

    try:
        return context.run.run_id
    except dg.DagsterError:  # DagsterInvalidPropertyError, not exported by name
        return "EPHEMERAL"
