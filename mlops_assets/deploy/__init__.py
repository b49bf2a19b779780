"""Deploy any scikit-learn Pipeline (group `deploy`): deployments as data → checked model version → serving."""


def __getattr__(name: str):
    # `defs` is built on first use: serving imports this package's Dagster-free modules (constants, config) and
    # must not pay for the asset modules, pandas and the I/O managers they pull in.
    if name == "defs":
        from mlops_assets.deploy.definitions import defs

        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
