"""Where the CIFAR-100 pickles come from: the full archive, or a folder holding its `meta`, `train`, `test`."""

from __future__ import annotations

import hashlib

from mlops_assets.scones.cifar import SPLITS, read_members
from resources.data_source import DatasetFile, DatasetUnavailable, DataSource, FetchedFile

ARCHIVE = DatasetFile("cifar-100-python.tar.gz", url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz")
# The University of Toronto publishes only an MD5 for the archive; torchvision checks the same value.
ARCHIVE_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
# The same pickles restricted to the two classes (../shared/data/cifar100-subset), for offline machines.
SUBSET_FOLDER = "cifar100-subset"
SUBSET_FILES = [DatasetFile(f"{SUBSET_FOLDER}/{name}") for name in ("meta", *SPLITS)]


def _md5(path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_cifar_members(data_source: DataSource) -> tuple[dict[str, bytes], list[FetchedFile]]:
    """`meta`, `train` and `test` bytes plus the files they came from.

    A local copy of the full archive wins, then a local unpacked folder, then the archive from the cache or
    the public URL (checked against its published MD5 before use).
    """
    if data_source.local_path(ARCHIVE) is None and all(data_source.local_path(f) for f in SUBSET_FILES):
        fetched = [data_source.fetch(f) for f in SUBSET_FILES]
        return read_members(fetched[0].path.parent), fetched
    archive = data_source.fetch(ARCHIVE)
    if archive.origin != "local copy" and _md5(archive.path) != ARCHIVE_MD5:
        raise DatasetUnavailable(
            f"{archive.path}: MD5 differs from the published {ARCHIVE_MD5}; "
            "delete it and retry, or set MLOPS_DATA_DIR to a folder holding a good copy"
        )
    return read_members(archive.path), [archive]
