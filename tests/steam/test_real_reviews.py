import pytest

from mlops_assets.steam import etl
from mlops_assets.steam.constants import GOLDEN_SENTIMENT, REAL_REVIEW_ROWS
from mlops_assets.steam.ingest import read_reviews


@pytest.mark.realdata
def test_golden_sentiment_2015_on_the_real_reviews(data_dir):
    raw, report = read_reviews(data_dir / "steam" / "australian_user_reviews.json.gz")
    assert report.malformed == [] and report.lines == 25_799 and len(raw) == REAL_REVIEW_ROWS
    years = [etl.posted_date(p)[1] for p in raw["posted"]]
    # Only the 2015 reviews are scored here (18,470 of them): the full table is the asset's job.
    in_2015 = raw[[y == 2015 for y in years]]
    scores = [etl.review_sentiment(r, etl.textblob_polarity) for r in in_2015["review"]]
    observed = {"negative": scores.count(0), "neutral": scores.count(1), "positive": scores.count(2)}
    assert observed == GOLDEN_SENTIMENT == {"negative": 1229, "neutral": 14360, "positive": 2881}
