"""Load a user photo as an upright HxWx3 uint8 RGB array, refusing bad input with clear messages."""
from __future__ import annotations

import io
import os
import warnings

import numpy as np
from PIL import Image, ImageOps

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
_ALIASES = {"MPO": "JPEG"}  # phone JPEGs with several pictures open as MPO
_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF8", "GIF"), (b"BM", "BMP"),
          (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))
MAX_PIXELS = 40_000_000


class PhotoError(ValueError):
    """A photo that cannot be used; the message names the file and the problem."""


class UnsupportedFormat(PhotoError):
    """Not an image, or an image format that is not accepted (judged from the bytes)."""


class TooLarge(PhotoError):
    """More pixels than allowed, or a decompression bomb."""


def load_photo(source, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An upright (EXIF-rotated) HxWx3 uint8 RGB array from a path, file bytes, a PIL image or
    a uint8 array (grey, RGB or RGBA).

    Transparent images are composited on white; grey, palette, CMYK and 16-bit/float images
    are converted. `name` is used in messages (default: the path, or "photo").
    """
    if isinstance(source, np.ndarray):
        channels = source.shape[2] if source.ndim == 3 else 1
        if source.dtype != np.uint8 or source.ndim not in (2, 3) or channels not in (1, 3, 4):
            raise PhotoError(f"{name or 'photo'}: expected an HxW, HxWx3 or HxWx4 uint8 array, got "
                             f"{source.dtype} {source.shape}")
        source = Image.fromarray(source[..., 0] if channels == 1 and source.ndim == 3 else source)
    if isinstance(source, Image.Image):
        name = name or "photo"
        _check_size(source, name, max_pixels)
        image = source
    else:
        data, name = _read(source, name)
        image = _open(data, name, max_pixels)
        try:
            image.load()
        except Exception as exc:  # PIL's decoders raise OSError, SyntaxError, ValueError, ...
            raise PhotoError(f"{name}: corrupt or truncated {image.format} image ({exc})") from exc
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a malformed EXIF block: keep the image as stored
        pass
    return _to_rgb(image, name)


def _read(source, name):
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), name or "photo"
    elif isinstance(source, (str, os.PathLike)):
        name = name or os.fspath(source)
        if not os.path.isfile(source):
            raise PhotoError(f"{name}: file not found")
        with open(source, "rb") as f:
            data = f.read()
    else:
        raise TypeError(f"expected a path, bytes or a PIL image, got {type(source).__name__}")
    if not data:
        raise PhotoError(f"{name}: empty file")
    return data, name


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Open (header only), check format and size before any decoding."""
    accepted = ", ".join(ACCEPTED_FORMATS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(f"{name}: image too large, refused as a decompression bomb ({exc}); "
                         f"the limit is {max_pixels} pixels") from exc
    except Exception as exc:  # UnidentifiedImageError, or a plugin's error on a damaged header
        kind = _sniff(data)
        if kind in ACCEPTED_FORMATS:
            raise PhotoError(f"{name}: corrupt {kind} image, its header cannot be read ({exc})") from exc
        raise UnsupportedFormat(f"{name}: not a supported image (given {kind}; accepted: {accepted})") from exc
    fmt = _ALIASES.get(image.format, image.format)
    if fmt not in ACCEPTED_FORMATS:
        raise UnsupportedFormat(f"{name}: unsupported image format {image.format} (accepted: {accepted})")
    _check_size(image, name, max_pixels)
    return image


def _sniff(data: bytes) -> str:
    """The format a file claims by its first bytes, for messages."""
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith(b"%PDF"):
        return "a PDF document"
    if data[4:8] == b"ftyp":
        return f"an ISO media file ({data[8:12].decode('ascii', 'replace')}, e.g. HEIC/AVIF)"
    if data.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    return "an unrecognised format"


def _check_size(image: Image.Image, name: str, max_pixels: int):
    w, h = image.size
    if w <= 0 or h <= 0:
        raise PhotoError(f"{name}: empty image ({w}x{h} pixels)")
    if w * h > max_pixels:
        raise TooLarge(f"{name}: image of {w}x{h} = {w * h} pixels exceeds the limit of {max_pixels} pixels")


def _to_rgb(image: Image.Image, name: str) -> np.ndarray:
    """Any PIL mode to RGB; alpha is composited on white.

    16-bit grey (and 32-bit integer grey above 255) is scaled by 1/257; float grey is taken
    as [0, 1] when its maximum is at most 1, else as [0, 255]; both are clipped."""
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(image, dtype=np.float64)
        top = a.max(initial=0)
        if mode == "F" and top <= 1.0:
            a = a * 255.0  # float image in [0, 1]
        elif mode.startswith("I;16") or (mode == "I" and top > 255):
            a = a / 257.0  # 16-bit range to 8-bit
        grey = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    try:
        rgb = image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise PhotoError(f"{name}: cannot convert image mode {mode} to RGB ({exc})") from exc
    return np.array(rgb, dtype=np.uint8)
