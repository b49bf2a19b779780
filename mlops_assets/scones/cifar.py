"""Reading CIFAR-100's python pickles and turning the bicycle/motorcycle rows into the project's PNG layout.

The original archive (`cifar-100-python.tar.gz`) holds `cifar-100-python/{meta,train,test}`: Python 2 pickles
whose `data` rows are 3072 uint8 values (1024 red, 1024 green, 1024 blue, each a row-major 32x32 plane).
The same reader accepts the archive itself or an unpacked folder holding `meta`, `train` and `test`.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_assets.scones.constants import CLASS_NAMES, FINE_LABEL_TO_CLASS

if TYPE_CHECKING:
    import numpy as np

SPLITS = ("train", "test")
ROW_VALUES = 3 * 32 * 32


class CifarFormatError(ValueError):
    """The file is not a CIFAR-100 python pickle of the expected layout; the message names file and field."""


@dataclass(frozen=True)
class CifarSplit:
    """The selected rows of one split: pixels as N x 32 x 32 x 3 uint8, and their provenance."""

    name: str
    rows: np.ndarray  # row index inside the pickle that was read
    labels: np.ndarray  # 0 = bicycle, 1 = motorcycle
    filenames: list[str]
    images: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _unpickle(data: bytes, source: str) -> dict:
    try:
        # encoding="bytes" keeps Python 2 str keys as bytes instead of guessing a text encoding.
        loaded = pickle.loads(data, encoding="bytes")
    except Exception as exc:  # pickle raises many types on corrupt input
        raise CifarFormatError(f"{source}: not a readable pickle ({exc})") from exc
    if not isinstance(loaded, dict):
        raise CifarFormatError(f"{source}: expected a dict, found {type(loaded).__name__}")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in loaded.items()}


def read_members(path: Path) -> dict[str, bytes]:
    """The raw bytes of `meta`, `train` and `test` from the tar.gz archive or an unpacked folder."""
    wanted = ("meta", *SPLITS)
    if path.is_dir():
        missing = [name for name in wanted if not (path / name).is_file()]
        if missing:
            raise CifarFormatError(f"{path}: missing {', '.join(missing)} (expected the files meta, train, test)")
        return {name: (path / name).read_bytes() for name in wanted}
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive.getmembers():
                name = Path(member.name).name
                if member.isfile() and name in wanted:
                    members[name] = archive.extractfile(member).read()
    except tarfile.TarError as exc:
        raise CifarFormatError(f"{path}: not a readable tar archive ({exc})") from exc
    missing = [name for name in wanted if name not in members]
    if missing:
        raise CifarFormatError(f"{path}: archive lacks {', '.join(missing)}")
    return members


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def fine_label_names(meta_bytes: bytes, source: str = "meta") -> list[str]:
    meta = _unpickle(meta_bytes, source)
    if "fine_label_names" not in meta:
        raise CifarFormatError(f"{source}: no fine_label_names field")
    return [_text(name) for name in meta["fine_label_names"]]


def check_label_names(names: list[str], source: str = "meta") -> None:
    """The archive must name fine labels 8 and 48 as the classes the project expects."""
    for fine_label, class_index in FINE_LABEL_TO_CLASS.items():
        found = names[fine_label] if fine_label < len(names) else None
        if found != CLASS_NAMES[class_index]:
            raise CifarFormatError(
                f"{source}: fine label {fine_label} is {found!r}, expected {CLASS_NAMES[class_index]!r}"
            )


def select_split(split_bytes: bytes, name: str) -> CifarSplit:
    """The bicycle and motorcycle rows of one split, in pickle row order."""
    import numpy as np

    batch = _unpickle(split_bytes, name)
    for field in ("data", "fine_labels", "filenames"):
        if field not in batch:
            raise CifarFormatError(f"{name}: no {field} field")
    data = np.asarray(batch["data"])
    if data.ndim != 2 or data.shape[1] != ROW_VALUES or data.dtype != np.uint8:
        raise CifarFormatError(f"{name}: data must be uint8 N x {ROW_VALUES}, found {data.dtype} {data.shape}")
    fine = np.asarray(batch["fine_labels"])
    if len(fine) != len(data) or len(batch["filenames"]) != len(data):
        raise CifarFormatError(f"{name}: data, fine_labels and filenames differ in length")
    rows = np.flatnonzero(np.isin(fine, list(FINE_LABEL_TO_CLASS)))
    labels = np.array([FINE_LABEL_TO_CLASS[int(label)] for label in fine[rows]], dtype=np.int64)
    images = data[rows].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    filenames = [_text(batch["filenames"][row]) for row in rows]
    return CifarSplit(name=name, rows=rows, labels=labels, filenames=filenames, images=images)


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def manifest_text(split: CifarSplit) -> str:
    """The `.lst` manifest of the original project: `row<TAB>label<TAB>filename` per image."""
    return "".join(
        f"{row}\t{label}\t{filename}\n"
        for row, label, filename in zip(split.rows, split.labels, split.filenames, strict=False)
    )


def parse_manifest(text: str) -> list[tuple[int, int, str]]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise CifarFormatError(f"manifest line {number}: expected 3 tab-separated fields, found {len(parts)}")
        entries.append((int(parts[0]), int(parts[1]), parts[2].strip()))
    return entries
