"""The original ACGPN loader's per-pixel work as jnp, run on device inside the jitted step.

Host code only decodes files to uint8 arrays and turns keypoints into integer boxes;
everything else happens here:
the PIL round trip to width 512 and back (quirk 1, reproduced bit-exactly: PIL's bicubic
kernel with its 22-bit fixed-point coefficients, uint8 rounding after each pass, and its
nearest-neighbour sampling), the pose maps (11x11 squares, round-tripped), normalisation.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

LOAD_WIDTH = 512
POSE_RADIUS = 5
_PRECISION_BITS = 32 - 8 - 2  # PIL Resample.c, 8-bit images


def _bicubic(x: np.ndarray) -> np.ndarray:
    a = -0.5
    x = np.abs(x)
    return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


@functools.lru_cache(maxsize=None)
def bicubic_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) int64 fixed-point coefficients of PIL's BICUBIC resize along one axis
    (precompute_coeffs + normalize_coeffs_8bpc of Pillow's Resample.c)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    m = np.zeros((out_size, in_size), np.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        w = _bicubic((np.arange(xmin, xmax) - center + 0.5) / filterscale)
        total = w.sum()
        if total != 0:
            w = w / total
        fixed = np.where(w < 0, np.trunc(w * (1 << _PRECISION_BITS) - 0.5), np.trunc(w * (1 << _PRECISION_BITS) + 0.5))
        m[xx, xmin:xmax] = fixed.astype(np.int64)
    return m


@functools.lru_cache(maxsize=None)
def nearest_index(in_size: int, out_size: int) -> np.ndarray:
    """PIL NEAREST resize source indices: floor((x + 0.5) * in/out)."""
    scale = in_size / out_size
    return np.minimum(np.floor((np.arange(out_size) + 0.5) * scale), in_size - 1).astype(np.int32)


@functools.lru_cache(maxsize=None)
def bicubic_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The banded form of bicubic_matrix: (out, K) source indices and int32 coefficients."""
    m = bicubic_matrix(in_size, out_size)
    nonzero = m != 0
    first = np.argmax(nonzero, axis=1)
    taps = int((nonzero.shape[1] - np.argmax(nonzero[:, ::-1], axis=1) - first).max())
    index = np.minimum(first[:, None] + np.arange(taps)[None, :], in_size - 1)
    weight = np.take_along_axis(m, index, axis=1)
    weight[first[:, None] + np.arange(taps)[None, :] >= in_size] = 0
    return index.astype(np.int32), weight.astype(np.int32)


def _bicubic_pass(x: jax.Array, axis: int, out_size: int) -> jax.Array:
    """One uint8 -> uint8 pass of PIL's resample along ``axis`` of a (..., H, W, C) int32 array:
    a few taps per output pixel, accumulated exactly in int32 like PIL's int accumulator."""
    index, weight = bicubic_taps(x.shape[axis], out_size)
    moved = jnp.moveaxis(x, axis, -1)
    acc = jnp.zeros(moved.shape[:-1] + (out_size,), jnp.int32)
    for k in range(index.shape[1]):
        acc = acc + jnp.take(moved, jnp.asarray(index[:, k]), axis=-1) * jnp.asarray(weight[:, k])
    out = jnp.clip((acc + (1 << (_PRECISION_BITS - 1))) >> _PRECISION_BITS, 0, 255)
    return jnp.moveaxis(out, -1, axis)


def resize_bicubic(x: jax.Array, height: int, width: int) -> jax.Array:
    """PIL ``Image.resize((width, height), BICUBIC)`` of uint8 (B, H, W, C): horizontal pass,
    uint8 rounding, vertical pass (passes whose size does not change are skipped, as PIL does)."""
    y = x.astype(jnp.int32)
    if y.shape[-2] != width:
        y = _bicubic_pass(y, y.ndim - 2, width)
    if y.shape[-3] != height:
        y = _bicubic_pass(y, y.ndim - 3, height)
    return y.astype(jnp.uint8)


def resize_nearest(x: jax.Array, height: int, width: int) -> jax.Array:
    """PIL ``Image.resize((width, height), NEAREST)``."""
    rows = nearest_index(x.shape[-3], height)
    cols = nearest_index(x.shape[-2], width)
    return x[..., rows, :, :][..., cols, :]


def round_trip(x: jax.Array, bicubic: bool) -> jax.Array:
    """Quirk 1: resize to width 512 (height int(512 * H / W)) and back, uint8 in and out."""
    h, w = x.shape[-3], x.shape[-2]
    big_h = int(LOAD_WIDTH * h / w)
    resize = resize_bicubic if bicubic else resize_nearest
    return resize(resize(x, big_h, LOAD_WIDTH), h, w)


# uint8 -> float32 tables computed with torch's op order (x / 255, then (x - 0.5) / 0.5), so the
# device results are bit-identical (XLA may rewrite a division by a constant).
_TO_UNIT = np.arange(256, dtype=np.float32) / np.float32(255)
_TO_SIGNED = (_TO_UNIT - np.float32(0.5)) / np.float32(0.5)


def to_unit(x_uint8: jax.Array) -> jax.Array:
    """ToTensor: [0, 1] float32."""
    return jnp.asarray(_TO_UNIT)[x_uint8.astype(jnp.int32)]


def normalize(x_uint8: jax.Array) -> jax.Array:
    """ToTensor then Normalize(0.5, 0.5): [-1, 1] float32."""
    return jnp.asarray(_TO_SIGNED)[x_uint8.astype(jnp.int32)]


def pose_boxes(keypoints: np.ndarray) -> np.ndarray:
    """Host side, float64: (..., 18, 3) keypoints -> (..., 18, 4) int32 [x0, y0, x1, y1] of
    ImageDraw.rectangle((x-5, y-5, x+5, y+5)) for points with x > 1 and y > 1 (C int casts
    truncate; done in float64 because coordinates like 95.99999999999999 round up in float32).
    Points that are not drawn get an empty box."""
    k = np.asarray(keypoints, np.float64)
    x, y = k[..., 0], k[..., 1]
    boxes = np.stack([np.trunc(x - POSE_RADIUS), np.trunc(y - POSE_RADIUS),
                      np.trunc(x + POSE_RADIUS), np.trunc(y + POSE_RADIUS)], axis=-1)
    boxes = np.clip(boxes, -1, 1 << 20)
    boxes[~((x > 1) & (y > 1))] = (0, 0, -1, -1)
    return boxes.astype(np.int32)


def pose_squares(boxes: jax.Array, height: int, width: int) -> jax.Array:
    """(B, 18, 4) boxes -> (B, H, W, 18) uint8 canvases with the filled white squares."""
    cols = jnp.arange(width)[None, None, :]
    rows = jnp.arange(height)[None, None, :]
    in_x = (cols >= boxes[..., 0:1]) & (cols <= boxes[..., 2:3])
    in_y = (rows >= boxes[..., 1:2]) & (rows <= boxes[..., 3:4])
    inside = in_y[..., :, None] & in_x[..., None, :]  # (B, 18, H, W)
    return jnp.where(inside, 255, 0).astype(jnp.uint8).transpose(0, 2, 3, 1)


def pose_maps(boxes: jax.Array, height: int, width: int) -> jax.Array:
    """(B, H, W, 18) pose input in [-1, 1] from pose_boxes: squares, round trip (BICUBIC, on
    the RGB copy whose channels are equal, so one channel suffices), normalised."""
    return normalize(round_trip(pose_squares(boxes, height, width), bicubic=True))


def prepare(raw: dict) -> dict:
    """Raw decoded batch -> the ACGPN loader's tensors (NHWC float32), on device.

    ``raw``: ``image``, ``color`` (B, H, W, 3) uint8; ``label``, ``edge`` (B, H, W, 1) uint8;
    ``pose_boxes`` (B, 18, 4) int32 from pose_boxes. Returns ``label`` (class ids as float),
    ``image``/``color``/``pose`` in [-1, 1] and ``edge`` in [0, 1], as the original loader."""
    h, w = raw["image"].shape[1:3]
    return {
        "label": round_trip(raw["label"], bicubic=False).astype(jnp.float32),
        "image": normalize(round_trip(raw["image"], bicubic=True)),
        "edge": to_unit(round_trip(raw["edge"], bicubic=False)),
        "color": normalize(round_trip(raw["color"], bicubic=True)),
        "pose": pose_maps(raw["pose_boxes"], h, w),
    }
