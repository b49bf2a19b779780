"""Untrusted bytes → model input: every rejection is an ImageRejected with a status and a reason."""

import numpy as np
import pytest
from PIL import Image

from mlops_assets.scones.imaging import ImageRejected, decode_image, image_row
from tests.scones.helpers import encoded


def test_resizes_any_accepted_image_to_the_model_input():
    row = image_row(encoded(Image.new("RGB", (200, 100), (10, 20, 30)), "JPEG"))
    assert row.shape == (1, 3072) and row.dtype == np.uint8
    assert abs(int(row[0, 0]) - 10) <= 3  # JPEG rounding


def test_transparency_is_flattened_on_white():
    row = image_row(encoded(Image.new("RGBA", (32, 32), (255, 0, 0, 0))))
    assert row[0, :3].tolist() == [255, 255, 255]


@pytest.mark.parametrize(
    "data, status, reason",
    [
        (b"", 422, "empty"),
        (b"hello, not an image", 415, "not an image in any known format"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 415, "not an image"),
    ],
)
def test_rejects_garbage(data, status, reason):
    with pytest.raises(ImageRejected, match=reason) as caught:
        decode_image(data)
    assert caught.value.status == status


def test_rejects_truncated_image():
    data = encoded(Image.new("RGB", (64, 64), (1, 2, 3)))
    with pytest.raises(ImageRejected, match="not a decodable image") as caught:
        decode_image(data[: len(data) // 2])
    assert caught.value.status == 422


def test_rejects_unaccepted_format():
    with pytest.raises(ImageRejected, match="format TIFF is not accepted") as caught:
        decode_image(encoded(Image.new("RGB", (8, 8)), "TIFF"))
    assert caught.value.status == 415


def test_refuses_too_many_bytes_and_decompression_bombs():
    with pytest.raises(ImageRejected, match="1,001 bytes; the limit is 1,000$") as caught:
        decode_image(b"x" * 1001, max_bytes=1000)
    assert caught.value.status == 413
    # A small file that would decode to a huge canvas: refused from the header, before any pixel is allocated.
    bomb = encoded(Image.new("1", (6000, 6000)))  # 36 M pixels in a few kB
    assert len(bomb) < 50_000
    with pytest.raises(ImageRejected) as caught:
        decode_image(bomb)
    assert caught.value.status == 413
    with pytest.raises(ImageRejected, match="64x64 pixels; the limit is 1,000 pixels"):
        decode_image(encoded(Image.new("RGB", (64, 64))), max_pixels=1000)
