"""Decoding and validating images: one code path for manifests, the CLI and the served model.

Every image that enters t2ieval goes through :func:`load_image` (files) or
:func:`decode_image_bytes` (bytes, e.g. base64 from an HTTP request). Both fully decode the image
(so a truncated file fails here, not later), enforce a pixel limit before decoding (so a
decompression bomb is refused cheaply) and return an RGB :class:`PIL.Image.Image`
(palette, alpha, 16-bit and grayscale inputs are converted).
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 40_000_000


class ImageError(ValueError):
    """An image could not be used; the message says which and why."""


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB; alpha is composited on white, 16-bit is scaled to 8-bit."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(scaled.astype(np.uint8), mode="L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _open_checked(source: io.BytesIO | Path, what: str, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(source)
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{what}: image is {width}x{height} = {width * height} pixels, "
                    f"over the limit of {max_pixels}"
                )
            img.load()  # full decode: truncated data fails here
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{what}: image is too large ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{what}: not an image (cannot identify the format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{what}: unreadable or truncated image ({exc})") from exc
    return to_rgb(img)


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open, fully decode and convert an image file to RGB, or raise :class:`ImageError`."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if not path.is_file():
        raise ImageError(f"{path}: not a file")
    return _open_checked(path, str(path), max_pixels)


def decode_image_bytes(
    data: bytes, what: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode image bytes (PNG, JPEG, ...) to RGB, or raise :class:`ImageError` naming ``what``."""
    if not data:
        raise ImageError(f"{what}: empty image data")
    return _open_checked(io.BytesIO(data), what, max_pixels)


def decode_base64_image(
    value: object, what: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode a base64 string (``b64encode`` or newline-wrapped ``encodebytes`` form) to RGB.

    Raises :class:`ImageError` for a non-string, invalid base64, or bytes that are not an image.
    URLs are never fetched: a string that is not base64 is an error.
    """
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    elif isinstance(value, str):
        text = "".join(value.split())  # encodebytes wraps lines every 76 characters
        if not text:
            raise ImageError(f"{what}: empty string instead of a base64 image")
        if text.startswith(("http://", "https://", "file:", "ftp://")):
            raise ImageError(f"{what}: URLs are not fetched; send the image as base64")
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImageError(f"{what}: invalid base64 ({exc})") from exc
    else:
        raise ImageError(f"{what}: expected a base64 string, got {type(value).__name__}")
    return decode_image_bytes(raw, what, max_pixels)


def encode_image_base64(img: Image.Image | str | Path, fmt: str = "PNG") -> str:
    """Encode an image (or an image file, sent as its bytes) as a base64 string for the REST API."""
    if isinstance(img, (str, Path)):
        return base64.b64encode(Path(img).read_bytes()).decode("ascii")
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def to_luminance(img: Image.Image) -> np.ndarray:
    """8-bit luminance (``PIL`` mode ``L``) as a ``uint8`` array indexed [row, column]."""
    return np.asarray(img.convert("L"), dtype=np.uint8)
