"""Where raw datasets come from: a local copy folder first, else a checksum-verified cached download.

Every raw dataset asset reads through `DataSource.fetch`, so the same asset code works on a laptop with the
datasets copied locally (`MLOPS_DATA_DIR`), on a machine with internet (downloads once, then the cache), and
fails with a message that names the setting when neither is possible.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import dagster as dg


class DatasetUnavailable(RuntimeError):
    """No local copy, and the download is impossible (offline, unreachable or a checksum mismatch)."""


@dataclass(frozen=True)
class DatasetFile:
    """One file of a public dataset: its path inside a local copy folder and where the public copy lives."""

    relative_path: str
    url: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    origin: str  # "local copy", "download" or "cache"
    sha256: str
    size: int
    url: str | None

    def metadata(self) -> dict[str, dg.MetadataValue]:
        meta = {
            "source_origin": dg.MetadataValue.text(self.origin),
            "source_path": dg.MetadataValue.path(str(self.path)),
            "source_sha256": dg.MetadataValue.text(self.sha256),
            "source_bytes": dg.MetadataValue.int(self.size),
        }
        if self.url:
            meta["source_url"] = dg.MetadataValue.url(self.url)
        return meta

    @property
    def data_version(self) -> dg.DataVersion:
        return dg.DataVersion(self.sha256[:16])


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class DataSource(dg.ConfigurableResource):
    """Resolves dataset files: `local_dir` (a copy folder, e.g. MLOPS_DATA_DIR), else `cache_dir`/download."""

    local_dir: str | None = None
    cache_dir: str
    offline: bool = False
    timeout_seconds: float = 60.0

    def local_path(self, spec: DatasetFile) -> Path | None:
        if not self.local_dir:
            return None
        candidate = Path(self.local_dir) / spec.relative_path
        return candidate if candidate.exists() else None

    def fetch(self, spec: DatasetFile) -> FetchedFile:
        local = self.local_path(spec)
        if local is not None and local.is_file():
            return FetchedFile(local, "local copy", sha256_file(local), local.stat().st_size, spec.url)

        cached = Path(self.cache_dir) / spec.relative_path
        if cached.is_file():
            digest = sha256_file(cached)
            if spec.sha256 is None or digest == spec.sha256:
                return FetchedFile(cached, "cache", digest, cached.stat().st_size, spec.url)
            cached.unlink()  # a corrupt or stale cache entry is fetched again

        where = f"{self.local_dir}/{spec.relative_path}" if self.local_dir else "MLOPS_DATA_DIR (unset)"
        if spec.url is None:
            raise DatasetUnavailable(
                f"{spec.relative_path}: no local copy at {where} and no public URL to download it from; "
                "set MLOPS_DATA_DIR to a folder that holds it."
            )
        if self.offline:
            raise DatasetUnavailable(
                f"{spec.relative_path}: no local copy at {where}, and MLOPS_OFFLINE forbids downloading "
                f"{spec.url}; set MLOPS_DATA_DIR to a folder holding a copy of the dataset."
            )
        return self._download(spec, cached)

    def _download(self, spec: DatasetFile, target: Path) -> FetchedFile:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".download-")
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=self.timeout_seconds) as resp:
                while chunk := resp.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError) as exc:
            Path(tmp_name).unlink(missing_ok=True)
            raise DatasetUnavailable(
                f"{spec.relative_path}: download from {spec.url} failed ({exc}); "
                "set MLOPS_DATA_DIR to a folder holding a copy of the dataset."
            ) from exc
        if spec.sha256 and digest.hexdigest() != spec.sha256:
            Path(tmp_name).unlink(missing_ok=True)
            raise DatasetUnavailable(
                f"{spec.relative_path}: checksum mismatch for {spec.url} "
                f"(expected {spec.sha256}, got {digest.hexdigest()}); the file was not kept."
            )
        shutil.move(tmp_name, target)
        return FetchedFile(target, "download", digest.hexdigest(), target.stat().st_size, spec.url)
