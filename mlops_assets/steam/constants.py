"""The steam system's contract (Dagster-free): names, the real data's known figures, and the serving snapshot that
`steam/serving_snapshot` publishes and `serving/steam.py` reads. (Source files: `sources.py`.)"""

SYSTEM = "steam"
GENERATED_ITEMS_KEY = "steam/generated/users_items.json.gz"

# Figures of the real files (SYSTEMS.md): the checks compare against them when the real file is the source.
REAL_GAME_LINES = 120_445
REAL_GAME_ROWS = 32_135
REAL_REVIEW_LINES = 25_799
REAL_REVIEW_ROWS = 59_305
REAL_ITEM_ROWS = 5_153_209
REAL_PLAYED_ROWS = 3_285_246
GOLDEN_SENTIMENT_YEAR = 2015
GOLDEN_SENTIMENT = {"negative": 1229, "neutral": 14360, "positive": 2881}

# The serving snapshot: one JSON document per file. A reader checks SNAPSHOT_FORMAT in the pointer's manifest and
# refuses another format rather than serving misread answers; bump it when a file's shape changes.
SNAPSHOT_FORMAT = 1
PLAYTIME_GENRE_FILE = "playtime_genre.json"  # genre → release year with the most hours
USER_FOR_GENRE_FILE = "user_for_genre.json"  # genre → {user_id, years: [{year, hours}]}
USERS_RECOMMEND_FILE = "users_recommend.json"  # year → [{rank, item_id, name}]
USERS_NOT_RECOMMEND_FILE = "users_not_recommend.json"  # year → [{rank, item_id, name}]
SENTIMENT_FILE = "sentiment.json"  # year → {Negative, Neutral, Positive}
GAME_RECOMMENDATIONS_FILE = "game_recommendations.json"  # item_id → [item_id]
USER_RECOMMENDATIONS_FILE = "user_recommendations.json"  # user_id → [item_id]
USER_IDS_LOWER_FILE = "user_ids_lower.json"  # lower-cased user_id → user_id, where unambiguous
GAME_NAMES_FILE = "game_names.json"  # item_id → name
SNAPSHOT_FILES = (
    PLAYTIME_GENRE_FILE,
    USER_FOR_GENRE_FILE,
    USERS_RECOMMEND_FILE,
    USERS_NOT_RECOMMEND_FILE,
    SENTIMENT_FILE,
    GAME_RECOMMENDATIONS_FILE,
    USER_RECOMMENDATIONS_FILE,
    USER_IDS_LOWER_FILE,
    GAME_NAMES_FILE,
)
