"""Test helpers of the Scones tests: images encoded in memory."""

import io

from PIL import Image


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()
