"""Where a system's assets live: under the key prefix [system] and in the group named after the system.

Every asset module and automation module spells keys and placement through these two functions, so a system's
name (SYSTEM in its contract module) is the only thing that decides them.
"""

from __future__ import annotations

import dagster as dg


def key(system: str, name: str) -> dg.AssetKey:
    """The key of the asset `name` of `system`, e.g. key("titanic", "feature_group") → titanic/feature_group."""
    return dg.AssetKey([system, name])


def placement(system: str) -> dict:
    """The decorator arguments that put an asset in its system: `@dg.asset(**placement(SYSTEM), ...)`."""
    return {"key_prefix": [system], "group_name": system}
