"""`mlops deploy pistachio models:/Pistachio_Classifier@champion` on a real MLflow registry: the deployment is
released with the champion, follows the alias when a new champion is promoted, and a refused registry URI is one
line. The sensor is evaluated in-process against a Dagster instance, as the daemon would."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pytest
from typer.testing import CliRunner

from mlops_assets import deploy
from mlops_assets.deploy import automation as deploy_automation
from mlops_assets.deploy.records import read_record
from mlops_assets.pistachio.constants import FEATURES, MODEL_NAME
from mlops_assets.pistachio.features import TRUSTED_MODEL_TYPES
from mlops_assets.pistachio.sweep import Config, build_pipeline
from resources import CHAMPION, build_object_store, build_registry, build_resources
from resources.model_bucket import build_model_bucket
from resources.snapshots import current_snapshot, read_snapshot_file
from serving.cli import app
from serving.deploy_served import load_served


def register(registry, C: float, seed: int) -> str:
    rng = np.random.default_rng(seed)
    records = [dict(zip(FEATURES, row, strict=False)) for row in rng.random((80, len(FEATURES)))]
    labels = (rng.random(80) > 0.5).astype(int)
    with registry.start_run("pistachio", run_name=f"C={C}") as run:
        info = registry.log_sklearn_model(
            build_pipeline(Config(C, 100, "lbfgs")).fit(records, labels), skops_trusted_types=TRUSTED_MODEL_TYPES
        )
    return registry.register(MODEL_NAME, info.model_uri, run.info.run_id).version


@pytest.fixture
def platform(settings, tmp_path):
    (tmp_path / "dagster_home").mkdir()
    defs = dg.Definitions.merge(
        dg.Definitions(resources=build_resources(settings), executor=dg.in_process_executor), deploy.defs
    )
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        yield settings, lambda: deploy_automation.release_now(defs, instance)


def served_version(settings) -> str:
    store = build_object_store(settings)
    pointer = current_snapshot(store, "deploy/pistachio")
    return json.loads(read_snapshot_file(store, pointer, "deployment.json"))["pin"]["version_id"]


def test_a_deployment_follows_the_champion_alias(platform):
    settings, tick = platform
    registry = build_registry(settings)
    first = register(registry, 1.0, seed=1)
    registry.set_alias(MODEL_NAME, CHAMPION, first)

    result = CliRunner().invoke(app, ["deploy", "pistachio", f"models:/{MODEL_NAME}@{CHAMPION}"])
    assert result.exit_code == 0, result.output
    record = read_record(build_object_store(settings), "pistachio")
    assert record.form_source == "inferred"  # the 16 columns read from the DictVectorizer
    assert [f["name"] for f in record.form["schema"]["fields"]] == sorted(FEATURES)

    assert [r.success for r in tick()] == [True] and served_version(settings) == str(first)
    assert tick() == []  # nothing moved: nothing to release

    second = register(registry, 8.0, seed=2)
    registry.set_alias(MODEL_NAME, CHAMPION, second)  # a new champion promoted
    assert [r.success for r in tick()] == [True] and served_version(settings) == str(second)
    store = build_object_store(settings)
    served = load_served(build_model_bucket(settings), store, current_snapshot(store, "deploy/pistachio"), registry)
    value, _ = served.predict(dict.fromkeys(FEATURES, 0.5))
    assert value in (0.0, 1.0) and served.pin.tag == CHAMPION and served.pin.source == "mlflow"


def test_a_registry_uri_that_names_nothing_is_refused_with_one_line(platform):
    result = CliRunner().invoke(app, ["deploy", "pistachio", f"models:/{MODEL_NAME}@{CHAMPION}"])
    assert result.exit_code == 1 and "no version of 'Pistachio_Classifier' holds the alias 'champion'" in result.output
    result = CliRunner().invoke(app, ["deploy", "pistachio", "models:/bad uri"])
    assert result.exit_code == 1 and "is not a registry model URI" in result.output
