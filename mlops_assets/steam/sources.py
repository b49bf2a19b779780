"""The Steam system's source files: where a local copy folder holds them and where the public copies live."""

from resources.data_source import DatasetFile

GAMES_FILE = DatasetFile(
    "steam/steam_games.json.gz",
    url="https://raw.githubusercontent.com/soyHenry/PI_ML_OPS/528129652c3272dedf49b9dde1e2ac3460c951dc/steam_games.json.gz",
)
REVIEWS_FILE = DatasetFile(
    "steam/australian_user_reviews.json.gz",
    url="https://mcauleylab.ucsd.edu/public_datasets/data/steam/australian_user_reviews.json.gz",
)
USERS_ITEMS_FILE = DatasetFile(
    "steam/users_items.json.gz",
    url="https://mcauleylab.ucsd.edu/public_datasets/data/steam/australian_users_items.json.gz",
)
# What the generator is fitted to when the real users_items file is unavailable.
USERS_FILE = DatasetFile("steam/users_items_users.parquet")
ITEMS_EXTRACT_FILE = DatasetFile("steam/user_items_4Api.parquet")
