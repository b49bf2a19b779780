"""Declarative automation of a system, declared in its automation module and applied to its assets once.

A system's `automation.py` names, by asset key, the automation condition (when Dagster materializes the asset on
its own) and the freshness policy (how old it may get before the UI flags it) of its assets; its
`definitions.py` applies them with `with_policies`, so the asset modules stay about what an asset computes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg


def with_policies(
    assets: Sequence[dg.AssetsDefinition | dg.AssetSpec],
    automation: Mapping[dg.AssetKey, dg.AutomationCondition] | None = None,
    freshness: Mapping[dg.AssetKey, dg.FreshnessPolicy] | None = None,
) -> list:
    """`assets` with the conditions and policies set on the specs they name; a key no asset has is an error."""
    automation, freshness = dict(automation or {}), dict(freshness or {})
    specs = [spec for asset in assets for spec in (asset.specs if isinstance(asset, dg.AssetsDefinition) else [asset])]
    keys = {spec.key for spec in specs}
    unknown = sorted(key.to_user_string() for key in (set(automation) | set(freshness)) - keys)
    if unknown:
        raise ValueError(f"automation or freshness declared for assets that do not exist: {', '.join(unknown)}")

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        changes = {}
        if spec.key in automation:
            changes["automation_condition"] = automation[spec.key]
        if spec.key in freshness:
            changes["freshness_policy"] = freshness[spec.key]
        return spec.replace_attributes(**changes) if changes else spec

    return list(dg.map_asset_specs(apply, assets))
