"""The team profile's launcher before anything starts (ports), and the executor it selects (no servers needed)."""

from __future__ import annotations

import socket

import pytest

from tests.support import free_port, free_ports_in_a_row
from tests.test_dev import refused_in_one_line

TEAM_OPTIONS = ["--postgres-port", "--redis-port", "--s3-port", "second API process"]


@pytest.mark.parametrize("option", TEAM_OPTIONS)
def test_a_team_port_in_use_is_named_with_its_option_and_nothing_starts(tmp_path, option):
    home = tmp_path / "mlops"
    ports = {name: free_port() for name in ("--ui-port", "--mlflow-port", *TEAM_OPTIONS[:3])}
    ports["--api-port"] = free_ports_in_a_row(2)
    with socket.socket() as taken:
        if option == "second API process":  # the launcher puts API process n on --api-port + n - 1
            taken.bind(("127.0.0.1", ports["--api-port"] + 1))
            option = "--api-port"
        else:
            taken.bind(("127.0.0.1", 0))
            ports[option] = taken.getsockname()[1]
        taken.listen()
        port = taken.getsockname()[1]
        up_args = ["--profile", "team", "--no-bootstrap", *[str(x) for pair in ports.items() for x in pair]]
        refused_in_one_line(home, up_args, port, option, env={"MLOPS_S3_ENDPOINT_URL": ""})


def test_the_executor_is_chosen_once_for_every_job_by_mlops_executor():
    from mlops_assets.definitions import build_executor
    from resources.settings import PlatformSettings

    assert build_executor(PlatformSettings.from_env({})).name == "in_process"
    broker = "redis://queue.example:6390/2"
    celery = build_executor(PlatformSettings.from_env({"MLOPS_EXECUTOR": "celery", "MLOPS_CELERY_BROKER": broker}))
    assert celery.name == "celery"
    config = celery.config_schema.resolve_config({}).value["config"]
    assert (config["broker"], config["backend"]) == (broker, broker)  # the backend defaults to the broker
    with pytest.raises(ValueError, match="MLOPS_EXECUTOR"):
        PlatformSettings.from_env({"MLOPS_EXECUTOR": "dask"})
