"""Atomic file writing and image output helpers (temp file in the same folder, then rename)."""
import contextlib
import io
import os
import tempfile

import numpy as np
from PIL import Image


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb"):
    """Write to a temporary file next to ``path`` and rename it into place on success, so a
    crash never leaves a half-written file and an existing file is replaced only when complete."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[-1, 1] float image (H, W, C) -> uint8 RGB (grey for one channel)."""
    a = np.clip((np.asarray(image, np.float32) + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a


def png_bytes(image_uint8: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image_uint8).save(buf, format="PNG")
    return buf.getvalue()


def save_png(path: str, image_uint8: np.ndarray) -> None:
    with atomic_write(path) as f:
        f.write(png_bytes(image_uint8))


def grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Tile equally sized uint8 images into one picture (rows of columns)."""
    return np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
