"""Weekly snapshot files: deriving the original's three files and reading one back safely.

The original's first two files were written with pandas' default `index=True`, so they start with an unnamed
column holding the row number. Its training read that column as a feature (`Unnamed: 0`), leaking row order
into the model. Here that column is recognised and dropped; every other surprise is reported by name.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlops_assets.pistachio.constants import (
    CLASS_LABELS,
    FEATURES,
    INCOMING_PREFIX,
    SNAPSHOT_SUFFIX,
    TARGET,
    WEEKLY_FILES,
)

if TYPE_CHECKING:
    import pandas as pd

_SNAPSHOT_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_REPORTED_ROWS = 10


class SnapshotUnreadable(ValueError):
    """The file cannot become a table at all (not CSV, empty, or required columns missing)."""


def derive_weekly_files(full: bytes) -> dict[str, bytes]:
    """The original's weekly files from the full Kaggle copy: {file name: CSV bytes}."""
    import pandas as pd

    frame = pd.read_csv(io.BytesIO(full))
    files = {}
    for stem, rows, with_index in WEEKLY_FILES:
        part = frame if rows is None else frame.iloc[:rows]
        files[f"{stem}{SNAPSHOT_SUFFIX}"] = part.to_csv(index=with_index).encode()
    return files


def snapshot_object_key(partition_key: str) -> str:
    return f"{INCOMING_PREFIX}/{partition_key}{SNAPSHOT_SUFFIX}"


def partition_key_for(object_key: str) -> str | None:
    """`pistachio/incoming/pistachio_20230710.csv` -> `pistachio_20230710`; None for anything else."""
    prefix = INCOMING_PREFIX.rstrip("/") + "/"
    if not object_key.startswith(prefix) or not object_key.endswith(SNAPSHOT_SUFFIX):
        return None
    name = object_key[len(prefix) : -len(SNAPSHOT_SUFFIX)]
    return name if "/" not in name and _SNAPSHOT_KEY.match(name) else None


@dataclass
class SnapshotReport:
    """What reading a snapshot file found; `problems` empty means the file is fit for training."""

    file: str
    rows: int = 0
    dropped_index_column: str | None = None
    unexpected_columns: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _is_leaked_index(name: str, values: pd.Series) -> bool:
    """pandas writes its index as an unnamed first column holding 0..n-1 (read back as `Unnamed: 0`)."""
    import pandas as pd

    unnamed = name == "" or name.lower().startswith("unnamed: ")
    numeric = pd.to_numeric(values, errors="coerce")
    return unnamed and numeric.notna().all() and bool((numeric.to_numpy() == range(len(values))).all())


def read_snapshot(data: bytes, file: str) -> tuple[pd.DataFrame, SnapshotReport]:
    """Parse one snapshot file into the 16 features + class (encoded 0/1), reporting every deviation.

    Unexpected columns are reported and left out; non-numeric or missing values and unknown classes are
    reported with their file line numbers (header = line 1) and kept as missing values, so a failed check
    can show them. Raises SnapshotUnreadable when no table with the required columns can be built.
    """
    import pandas as pd

    report = SnapshotReport(file=file)
    try:
        raw = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SnapshotUnreadable(f"{file}: not a readable CSV file ({exc})") from exc
    if raw.empty:
        raise SnapshotUnreadable(f"{file}: no data rows")

    first = raw.columns[0]
    if _is_leaked_index(str(first), raw[first]):
        report.dropped_index_column = str(first)
        raw = raw.drop(columns=[first])

    raw.columns = [str(column).strip().lower() for column in raw.columns]
    expected = set(FEATURES) | {TARGET}
    missing = [column for column in (*FEATURES, TARGET) if column not in raw.columns]
    if missing:
        raise SnapshotUnreadable(f"{file}: missing required column(s) {', '.join(missing)}")
    report.unexpected_columns = [column for column in raw.columns if column not in expected]
    for column in report.unexpected_columns:
        report.problems.append(f"{file}: unexpected column {column!r}")

    frame = pd.DataFrame({column: pd.to_numeric(raw[column].str.strip(), errors="coerce") for column in FEATURES})
    for column in FEATURES:
        bad = frame.index[frame[column].isna()]
        if len(bad):
            lines = ", ".join(str(i + 2) for i in bad[:MAX_REPORTED_ROWS])
            report.problems.append(
                f"{file}: column {column!r} has {len(bad)} non-numeric or empty value(s), line(s) {lines}"
            )
    labels = raw[TARGET].str.strip()
    frame[TARGET] = labels.map({CLASS_LABELS[0]: 0, CLASS_LABELS[1]: 1}).astype("Int64")
    unknown = frame.index[frame[TARGET].isna()]
    if len(unknown):
        lines = ", ".join(f"{i + 2} ({labels[i]!r})" for i in unknown[:MAX_REPORTED_ROWS])
        report.problems.append(f"{file}: column 'class' has {len(unknown)} unknown label(s), line(s) {lines}")
    report.rows = len(frame)
    return frame, report
