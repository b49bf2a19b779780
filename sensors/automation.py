"""One sensor per system that evaluates the automation conditions declared on its assets.

Dagster's default automation sensor starts stopped and two sensors may not target the same asset, so each system
gets its own, running from the start, targeting its group (which holds its assets and its `inference_log`).
"""

from __future__ import annotations

import dagster as dg

from mlops_assets.systems import system_names


def automation_sensor(system: str, minimum_interval_seconds: int = 30) -> dg.AutomationConditionSensorDefinition:
    """The sensor that evaluates the automation conditions of `system`'s group, running from the start."""
    return dg.AutomationConditionSensorDefinition(
        f"{system}_automation",
        target=dg.AssetSelection.groups(system),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=minimum_interval_seconds,
        description=f"Evaluates the automation conditions declared on the {system} assets.",
    )


def automation_sensors() -> list[dg.AutomationConditionSensorDefinition]:
    return [automation_sensor(name) for name in system_names()]
