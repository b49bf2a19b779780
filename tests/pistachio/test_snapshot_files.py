"""Weekly file derivation and the leaked index column."""

import io
import re

import pandas as pd
import pytest

from mlops_assets.pistachio.constants import FEATURES
from mlops_assets.pistachio.snapshot_files import (
    SnapshotUnreadable,
    derive_weekly_files,
    partition_key_for,
    read_snapshot,
    snapshot_object_key,
)

HEADER = [
    "AREA",
    "PERIMETER",
    "MAJOR_AXIS",
    "MINOR_AXIS",
    "ECCENTRICITY",
    "EQDIASQ",
    "SOLIDITY",
    "CONVEX_AREA",
    "EXTENT",
    "ASPECT_RATIO",
    "ROUNDNESS",
    "COMPACTNESS",
    "SHAPEFACTOR_1",
    "SHAPEFACTOR_2",
    "SHAPEFACTOR_3",
    "SHAPEFACTOR_4",
    "Class",
]


def kaggle_frame(rows: int) -> pd.DataFrame:
    """Kaggle-layout rows: upper-case features, the Class label last."""
    frame = pd.DataFrame({name: [float(i + j) for i in range(rows)] for j, name in enumerate(HEADER[:-1])})
    frame["Class"] = ["Kirmizi_Pistachio" if i % 3 else "Siit_Pistachio" for i in range(rows)]
    return frame


def test_weekly_files_match_the_originals_layout():
    files = derive_weekly_files(kaggle_frame(1400).to_csv(index=False).encode())
    assert list(files) == ["pistachio_20230710.csv", "pistachio_20230717.csv", "pistachio_20230724.csv"]
    first, second, last = (pd.read_csv(io.BytesIO(files[name])) for name in files)
    assert (len(first), len(second), len(last)) == (900, 1300, 1400)
    # The first two begin with pandas' unnamed index column, as the original's files did; the last does not.
    assert files["pistachio_20230710.csv"].startswith(b",AREA,")
    assert first.columns[0] == "Unnamed: 0" and first["Unnamed: 0"].tolist() == list(range(900))
    assert list(last.columns) == HEADER


def test_real_weekly_files(data_dir):
    files = derive_weekly_files((data_dir / "pistachio" / "pistachio.csv").read_bytes())
    frames = {name: read_snapshot(data, name) for name, data in files.items()}
    assert [report.rows for _, report in frames.values()] == [900, 1300, 1718]
    assert [report.dropped_index_column for _, report in frames.values()] == ["Unnamed: 0", "Unnamed: 0", None]
    assert all(report.ok for _, report in frames.values())
    full, _ = frames["pistachio_20230724.csv"]
    assert full["class"].value_counts().to_dict() == {0: 998, 1: 720}
    # The first week is a prefix of the last: same rows, the index column gone.
    first, _ = frames["pistachio_20230710.csv"]
    pd.testing.assert_frame_equal(first, full.iloc[:900])


def test_index_column_is_dropped_and_not_a_feature():
    data = kaggle_frame(5).to_csv(index=True).encode()
    frame, report = read_snapshot(data, "week.csv")
    assert report.ok and report.dropped_index_column == "Unnamed: 0"
    assert list(frame.columns) == [*FEATURES, "class"]
    assert frame["class"].tolist() == [1, 0, 0, 1, 0]


def test_a_named_or_shuffled_first_column_is_not_mistaken_for_the_index():
    frame = kaggle_frame(4)
    frame.insert(0, "batch", [7, 7, 8, 8])
    _, report = read_snapshot(frame.to_csv(index=False).encode(), "pistachio/incoming/w.csv")
    assert not report.ok
    assert report.unexpected_columns == ["batch"]
    assert report.problems == ["pistachio/incoming/w.csv: unexpected column 'batch'"]

    shuffled = kaggle_frame(4)
    shuffled.index = [3, 1, 0, 2]
    _, report = read_snapshot(shuffled.to_csv(index=True).encode(), "s.csv")
    assert report.unexpected_columns == ["unnamed: 0"] and report.dropped_index_column is None


def test_bad_values_are_reported_with_file_column_and_line():
    frame = kaggle_frame(4).astype({"AREA": object})
    frame.loc[2, "AREA"] = "n/a"
    frame.loc[3, "Class"] = "Pecan"
    parsed, report = read_snapshot(frame.to_csv(index=False).encode(), "bad.csv")
    assert report.problems == [
        "bad.csv: column 'area' has 1 non-numeric or empty value(s), line(s) 4",
        "bad.csv: column 'class' has 1 unknown label(s), line(s) 5 ('Pecan')",
    ]
    assert parsed["area"].isna().tolist() == [False, False, True, False]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "not a readable CSV"),
        (b"AREA,Class\n", "no data rows"),
        (b"AREA,Class\n1,Siit_Pistachio\n", "missing required column(s) perimeter"),
    ],
)
def test_unusable_files_are_refused_with_the_file_named(data, message):
    with pytest.raises(SnapshotUnreadable, match=re.escape(message)) as error:
        read_snapshot(data, "pistachio/incoming/x.csv")
    assert str(error.value).startswith("pistachio/incoming/x.csv:")


def test_partition_keys_round_trip_through_object_keys():
    key = snapshot_object_key("pistachio_20230710")
    assert key == "pistachio/incoming/pistachio_20230710.csv"
    assert partition_key_for(key) == "pistachio_20230710"
    assert partition_key_for("pistachio/incoming/notes.txt") is None
    assert partition_key_for("pistachio/incoming/sub/x.csv") is None
    assert partition_key_for("pistachio/model/x.csv") is None
