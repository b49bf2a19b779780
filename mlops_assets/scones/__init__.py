"""Scones Unlimited image workflow (group `scones`): SYSTEMS.md section 3, off SageMaker and Step Functions."""


def __getattr__(name: str):
    # `defs` is built on first use: serving imports this package's Dagster-free modules (constants, config) and
    # must not pay for the asset modules, pandas and the I/O managers they pull in.
    if name == "defs":
        from mlops_assets.scones.definitions import defs

        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
