"""The Steam golden numbers through the assets: the reviews path of the `steam` group materialized on the real
reviews file (raw_reviews -> reviews and its blocking golden check -> sentiment_answers), answers read back from
the DuckDB warehouse the assets wrote. The asset scores every review (59,305), so this is the suite's one full
TextBlob pass over the real file."""

import dagster as dg
import duckdb
import pytest
from dagster_duckdb_pandas import DuckDBPandasIOManager

from mlops_assets.steam.assets import raw_reviews, reviews
from mlops_assets.steam.constants import REAL_REVIEW_ROWS
from mlops_assets.steam.products import sentiment_answers
from resources.data_source import DataSource


@pytest.mark.realdata
def test_sentiment_2015_through_the_assets_on_the_real_reviews(data_dir, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    result = dg.materialize(
        [raw_reviews, reviews, sentiment_answers],
        resources={
            "io_manager": DuckDBPandasIOManager(database=str(warehouse)),
            "data_source": DataSource(local_dir=str(data_dir), cache_dir=str(tmp_path / "cache"), offline=True),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    parse = checks["lines_parse"]  # every line of the real file parsed, none dropped
    assert parse.passed and parse.metadata["lines"].value == 25_799 and parse.metadata["malformed"].value == 0
    golden = checks["golden_sentiment_2015"]
    assert golden.passed and golden.description is None  # checked as the real file, not waved through
    assert golden.metadata["observed_negative"].value == 1229
    with duckdb.connect(str(warehouse), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM steam.reviews").fetchone()[0] == REAL_REVIEW_ROWS
        counts = db.execute(
            "SELECT negative, neutral, positive FROM steam.sentiment_answers WHERE year = 2015"
        ).fetchone()
    assert counts == (1229, 14360, 2881)
