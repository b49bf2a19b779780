"""Monitoring settings as a resource: asset code reads thresholds and the retrain switch from here, never from
the environment (PlatformSettings reads MLOPS_DRIFT_SHARE_THRESHOLD and friends when the location loads)."""

from __future__ import annotations

import dagster as dg


class MonitoringSettings(dg.ConfigurableResource):
    drift_share_threshold: float = 0.5  # the drift check warns when at least this share of features drifted
    performance_drop_tolerance: float = 0.1  # the performance check warns below (champion's metric - this)
    retrain_on_failure: bool = False  # a failed drift or performance check requests retraining (off by default)
    dagster_ui_url: str = "http://127.0.0.1:3000"

    def asset_url(self, *key: str) -> str:
        return f"{self.dagster_ui_url.rstrip('/')}/assets/{'/'.join(key)}"
