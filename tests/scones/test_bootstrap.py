"""A new deployment's first demo: the bootstrap lands sample images for the running sensor to classify."""

from mlops_assets.scones.bootstrap import SAMPLE_LANDINGS
from mlops_assets.scones.constants import INCOMING_PREFIX
from resources import build_object_store
from tests.scones.test_sensors import evaluate, landed_keys


def test_bootstrap_lands_sample_images_for_the_sensor(scones_platform):
    store = build_object_store(scones_platform.settings)
    landed = [info.key for info in store.list_objects(INCOMING_PREFIX)]
    assert len(landed) == SAMPLE_LANDINGS
    assert all(key.startswith(f"{INCOMING_PREFIX}sample-") and key.endswith(".png") for key in landed)
    # One tick, one inference run for the three samples.
    (request,), _ = evaluate(scones_platform.definitions, scones_platform.instance, store, None)
    assert sorted(landed_keys(request)) == sorted(landed)
