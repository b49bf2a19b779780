"""One vocabulary across the systems: kinds spelled one way, tables described the same way."""

import pandas as pd

from mlops_assets.common.tables import table_metadata

# Spellings replaced by one (scikit-learn), and a storage kind that would be wrong when the store is the folder.
RETIRED_KINDS = {"sklearn", "scikitlearn", "s3", "S3"}


def test_no_asset_uses_a_retired_kind():
    from mlops_assets.definitions import defs

    graph = defs().resolve_asset_graph()
    kinds = {key.to_user_string(): graph.get(key).kinds for key in graph.get_all_asset_keys()}
    assert {key: sorted(k & RETIRED_KINDS) for key, k in kinds.items() if k & RETIRED_KINDS} == {}
    for model in ("titanic/survival_model", "scones/image_classifier", "pistachio/model_sweep"):
        assert "scikit-learn" in kinds[model], model


def test_table_metadata_is_row_count_and_column_schema():
    frame = pd.DataFrame({"passenger_id": [1, 2], "survived": [0, 1], "source": ["kaggle", "synthetic"]})
    metadata = table_metadata(frame)
    assert metadata["dagster/row_count"].value == 2
    columns = metadata["dagster/column_schema"].value.columns
    assert [(c.name, c.type) for c in columns] == [
        ("passenger_id", "int64"),
        ("survived", "int64"),
        ("source", "object"),
    ]


def test_registry_uris_are_spelled_in_one_place():
    # `models:/<name>/<version>` is built by resources.mlflow_registry.model_uri only, so a change of scheme (or an
    # alias instead of a version) is one edit, not a hunt through every system.
    import re

    from tests.support import REPO_ROOT

    built = re.compile(r"""f["']models:/\{""")
    sources = [p for package in ("mlops_assets", "serving", "sensors") for p in (REPO_ROOT / package).rglob("*.py")]
    offenders = [str(p.relative_to(REPO_ROOT)) for p in sources if built.search(p.read_text())]
    assert offenders == []
