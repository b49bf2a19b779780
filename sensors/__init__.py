"""The platform's own sensors: the ones every system gets by the same rule, composed once by the code location.

A system's sensors for its own external events (an object landing, a pin written by the CLI) live beside its
assets, in `mlops_assets/<system>/automation.py`. Here live the two that are the platform's policy:

- `<system>_automation` (`sensors/automation.py`): evaluates the automation conditions declared on the system's
  group, running from the start;
- `<system>_retrain_on_monitoring_failure` (`sensors/retrain.py`): requests the system's training job when one
  of its monitoring checks fails, for each system whose `definitions.py` declares `RETRAIN`.

Both are built for the systems `mlops_assets.systems` finds, so a new system gets them without a line here.
"""

from __future__ import annotations

import dagster as dg


def definitions() -> dg.Definitions:
    from sensors.automation import automation_sensors
    from sensors.retrain import retrain_sensors

    return dg.Definitions(sensors=[*automation_sensors(), *retrain_sensors()])
