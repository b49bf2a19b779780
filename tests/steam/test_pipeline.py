import dagster as dg
import pytest

from mlops_assets import steam
from mlops_assets.steam import bootstrap as steam_bootstrap
from resources import build_resources
from resources.settings import PlatformSettings
from resources.snapshots import current_snapshot, read_snapshot_file


@pytest.fixture
def steam_defs(platform_env, tiny_steam_data, monkeypatch):
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tiny_steam_data))
    settings = PlatformSettings.from_env()
    resources = build_resources(settings)
    defs = dg.Definitions.merge(steam.defs, dg.Definitions(resources=resources, executor=dg.in_process_executor))
    return defs, resources


def _checks(instance, run_id):
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    return {
        (
            tuple(r.event_log_entry.dagster_event.event_specific_data.asset_key.path),
            r.event_log_entry.dagster_event.event_specific_data.check_name,
        ): r.event_log_entry.dagster_event.event_specific_data
        for r in records
    }


def test_bootstrap_materializes_the_group_from_tiny_files_with_generated_items(steam_defs):
    defs, resources = steam_defs
    instance = dg.DagsterInstance.ephemeral()
    steam_bootstrap.bootstrap(defs, instance, generator_scale=1.0)

    run = instance.get_runs()[0]
    checks = _checks(instance, run.run_id)
    parse = checks[(("steam", "raw_reviews"), "lines_parse")]
    assert not parse.passed and parse.metadata["malformed"].value == 1  # the broken line 4, run not stopped
    assert "line 4" in parse.metadata["malformed_lines"].value
    assert checks[(("steam", "raw_user_items"), "item_rows_match_items_count")].passed
    assert checks[(("steam", "game_recommendations"), "similarity_matches_own_tags")].passed

    items = instance.get_latest_materialization_event(dg.AssetKey(["steam", "raw_user_items"]))
    meta = items.asset_materialization.metadata
    assert meta["source"].value == "generated"
    assert meta["dagster/row_count"].value == 9  # the users' real items_count: 3 + 4 + 0 + 2

    store = resources["object_store"]
    pointer = current_snapshot(store, "steam")
    assert pointer is not None and pointer["manifest"]["dagster_run_id"] == run.run_id
    import orjson

    sentiment = orjson.loads(read_snapshot_file(store, pointer, "sentiment.json"))
    # 'Great game, wonderful and fun!' and 'It's "ok".' both score >= 0.33 with TextBlob; a blank review is neutral.
    assert sentiment["2015"] == {"Negative": 0, "Neutral": 0, "Positive": 2}
    assert sentiment["2014"] == {"Negative": 0, "Neutral": 1, "Positive": 0}
    assert sentiment["2020"]["Negative"] == 1  # "Posted July 10." has no year: the original's 2020
    games = orjson.loads(read_snapshot_file(store, pointer, "game_recommendations.json"))
    assert games["10"][0] == "20"  # same tags exactly: the aligned recommender puts it first
    evaluation = instance.get_latest_materialization_event(dg.AssetKey(["steam", "recommender_evaluation"]))
    assert isinstance(evaluation.asset_materialization.metadata["hit_at_5"].value, float)
