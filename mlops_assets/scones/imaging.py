"""Turning untrusted bytes into the model's 32x32 RGB input, with limits that make hostile input harmless.

Shared by the event-driven workflow and the HTTP endpoint so both reject the same things for the same reasons.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


if TYPE_CHECKING:
    from PIL import Image

MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Far above any photo worth classifying at 32x32, far below what a decompression bomb needs to hurt.
MAX_IMAGE_PIXELS = 4096 * 4096
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
MODEL_SIDE = 32


class ImageRejected(ValueError):
    """The bytes are not an acceptable image. `status` is the HTTP status an endpoint should answer with."""

    def __init__(self, reason: str, status: int = 422):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def decode_image(data: bytes, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Open, check and fully decode an image; every failure is an ImageRejected naming the reason."""
    from PIL import Image

    # Pillow's own guard: refuse (not just warn) above twice this many pixels; our explicit check below is stricter.
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    if not data:
        raise ImageRejected("the file is empty")
    if len(data) > max_bytes:
        raise ImageRejected(f"the file has {len(data):,} bytes; the limit is {max_bytes:,}", status=413)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            # The header is read before any pixel: refuse huge canvases before decoding allocates them.
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRejected(
                    f"the image is {width}x{height} pixels; the limit is {max_pixels:,} pixels", status=413
                )
            if image.format not in ALLOWED_FORMATS:
                raise ImageRejected(
                    f"format {image.format} is not accepted; use one of {', '.join(ALLOWED_FORMATS)}", status=415
                )
            image.load()
    except ImageRejected:
        raise
    except Image.UnidentifiedImageError:
        raise ImageRejected(
            f"the file is not an image in any known format; use one of {', '.join(ALLOWED_FORMATS)}", status=415
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"the image is too large to decode safely ({exc})", status=413) from exc
    except Exception as exc:  # Pillow raises many types on corrupt or non-image data
        raise ImageRejected(f"the file is not a decodable image ({type(exc).__name__}: {exc})") from exc
    return image


def model_input(image: Image.Image) -> np.ndarray:
    """1 x 3072 uint8 row (height, width, channel), the layout the classifier was trained on."""
    import numpy as np
    from PIL import Image

    if image.mode in ("RGBA", "LA", "P"):
        # Transparent pixels go on white, the way a browser shows them, instead of on arbitrary colour values.
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        image = canvas
    rgb = image.convert("RGB")
    if rgb.size != (MODEL_SIDE, MODEL_SIDE):
        rgb = rgb.resize(
            (MODEL_SIDE, MODEL_SIDE), Image.Resampling.BOX if min(rgb.size) >= MODEL_SIDE else Image.Resampling.BICUBIC
        )
    return np.asarray(rgb, dtype=np.uint8).reshape(1, -1)


def image_row(data: bytes, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    return model_input(decode_image(data, max_bytes, max_pixels))
