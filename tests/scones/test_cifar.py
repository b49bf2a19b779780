"""Reading CIFAR-100's pickle layout from a folder or a tar.gz, and the manifests."""

import io
import pickle
import tarfile

import numpy as np
import pytest

from mlops_assets.scones.cifar import (
    CifarFormatError,
    check_label_names,
    fine_label_names,
    manifest_text,
    parse_manifest,
    read_members,
    select_split,
)

NAMES = [f"class_{i}" for i in range(100)]
NAMES[8], NAMES[48] = "bicycle", "motorcycle"


def batch(fine_labels: list[int]) -> bytes:
    """A split in the original layout: bytes keys (Python 2 str), R/G/B planes per row, protocol 2."""
    rows = len(fine_labels)
    data = np.zeros((rows, 3072), dtype=np.uint8)
    for i in range(rows):
        data[i, :1024], data[i, 1024:2048], data[i, 2048:] = i, 100 + i, 200 + i  # R, G, B planes
    return pickle.dumps(
        {
            b"data": data,
            b"fine_labels": fine_labels,
            b"coarse_labels": [18] * rows,
            b"filenames": [f"img_{i}.png".encode() for i in range(rows)],
            b"batch_label": b"training batch 1 of 1",
        },
        protocol=2,
    )


def meta() -> bytes:
    return pickle.dumps({b"fine_label_names": [n.encode() for n in NAMES], b"coarse_label_names": []}, protocol=2)


def test_select_split_keeps_the_two_classes_in_row_order():
    split = select_split(batch([3, 48, 8, 99, 8]), "train")
    assert split.rows.tolist() == [1, 2, 4]
    assert split.labels.tolist() == [1, 0, 0]
    assert split.filenames == ["img_1.png", "img_2.png", "img_4.png"]
    # Planes become height x width x channel: every pixel of row 1 is (1, 101, 201).
    assert split.images.shape == (3, 32, 32, 3)
    assert split.images[0, 5, 7].tolist() == [1, 101, 201]


def test_archive_and_folder_read_the_same(tmp_path):
    members = {"meta": meta(), "train": batch([8, 48]), "test": batch([48])}
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, data in members.items():
        (folder / name).write_bytes(data)
    archive = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-100-python")
    assert read_members(folder) == members == read_members(archive)
    check_label_names(fine_label_names(members["meta"]))


def test_clear_errors_for_bad_sources(tmp_path):
    (tmp_path / "meta").write_bytes(meta())
    with pytest.raises(CifarFormatError, match="missing train, test"):
        read_members(tmp_path)
    (tmp_path / "not.tar.gz").write_bytes(b"nope")
    with pytest.raises(CifarFormatError, match="not a readable tar archive"):
        read_members(tmp_path / "not.tar.gz")
    with pytest.raises(CifarFormatError, match="train: not a readable pickle"):
        select_split(b"garbage", "train")
    wrong = pickle.dumps({b"data": np.zeros((1, 10), np.uint8), b"fine_labels": [8], b"filenames": [b"x"]})
    with pytest.raises(CifarFormatError, match="data must be uint8 N x 3072"):
        select_split(wrong, "test")
    renamed = pickle.dumps({b"fine_label_names": [b"x"] * 100})
    with pytest.raises(CifarFormatError, match="fine label 8 is 'x', expected 'bicycle'"):
        check_label_names(fine_label_names(renamed))


def test_manifest_round_trip_and_crlf():
    split = select_split(batch([8, 48]), "test")
    text = manifest_text(split)
    assert text == "0\t0\timg_0.png\n1\t1\timg_1.png\n"
    assert (
        parse_manifest(text) == parse_manifest(text.replace("\n", "\r\n")) == [(0, 0, "img_0.png"), (1, 1, "img_1.png")]
    )
    with pytest.raises(CifarFormatError, match="line 1: expected 3 tab-separated fields"):
        parse_manifest("0 0 img.png\n")


def test_png_round_trip():
    from PIL import Image

    from mlops_assets.scones.cifar import png_bytes

    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(image)))), image)
