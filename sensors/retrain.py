"""Retraining on a failed monitoring check: one sensor per system that declares a retrain path.

A system declares in its `definitions.py` which monitoring checks, when one fails, start which training job:
`RETRAIN = RetrainOnFailure(checks=..., job=...)` (`mlops_assets/common/retrain.py`). The rule is the platform's:
retraining is off by default (`MLOPS_RETRAIN_ON_MONITORING_FAILURE=1` turns it on, read through the `monitoring`
resource). The sensor itself always runs, so that a failure seen while the switch was off is marked handled and
is not acted on later; a requested run carries the tags `trigger`, `monitoring.check` and
`monitoring.check_run_id`.
"""

from __future__ import annotations

import importlib
import json

import dagster as dg

from mlops_assets.common.retrain import RetrainOnFailure
from mlops_assets.systems import PACKAGE, system_names
from resources.monitoring import MonitoringSettings

TRIGGER = "monitoring_check_failed"


def failed_evaluations(
    instance: dg.DagsterInstance, checks: list[dg.AssetCheckKey], handled: dict[str, int]
) -> tuple[list, dict[str, int]]:
    """The newest evaluation of each check, when it is newer than the handled one and did not pass."""
    failed, cursor = [], dict(handled)
    for check in checks:
        records = instance.event_log_storage.get_asset_check_execution_history(check, limit=1)
        if not records:
            continue
        record = records[0]
        name = check.to_user_string()
        if record.id <= handled.get(name, 0):
            continue
        evaluation = record.event.dagster_event.event_specific_data if record.event else None
        if evaluation is None:  # still running: look again next tick
            continue
        cursor[name] = record.id
        if not evaluation.passed:
            failed.append((name, record))
    return failed, cursor


def retrain_sensor(system: str, retrain: RetrainOnFailure) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{system}_retrain_on_monitoring_failure",
        job_name=retrain.job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Retrain {system} when a drift or realized-performance check fails "
        "(only with MLOPS_RETRAIN_ON_MONITORING_FAILURE=1).",
    )
    def sensor(context: dg.SensorEvaluationContext, monitoring: MonitoringSettings):
        handled = json.loads(context.cursor) if context.cursor else {}
        failed, cursor = failed_evaluations(context.instance, list(retrain.checks), handled)
        context.update_cursor(json.dumps(cursor))
        if not failed:
            return dg.SkipReason("no new failed monitoring check")
        names = ", ".join(name for name, _ in failed)
        if not monitoring.retrain_on_failure:
            return dg.SkipReason(
                f"{names} failed; retraining on monitoring failures is off (MLOPS_RETRAIN_ON_MONITORING_FAILURE)"
            )
        name, record = failed[0]
        partition = retrain.partition_key(context.instance) if retrain.partition_key else None
        return dg.RunRequest(
            run_key=f"{name}:{record.id}",
            partition_key=partition,
            tags={"trigger": TRIGGER, "monitoring.check": names, "monitoring.check_run_id": record.run_id},
        )

    return sensor


def retrain_sensors() -> list[dg.SensorDefinition]:
    """A retrain sensor for each system whose definitions module declares `RETRAIN`."""
    sensors = []
    for name in system_names():
        retrain = getattr(importlib.import_module(f"{PACKAGE}.{name}.definitions"), "RETRAIN", None)
        if retrain is not None:
            sensors.append(retrain_sensor(name, retrain))
    return sensors
