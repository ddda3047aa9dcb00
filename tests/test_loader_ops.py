"""The device-side loader ops equal PIL, bit for bit, on random inputs (reference: the
original loader's PIL calls written out here)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageDraw

from tryon_jax.data import loader_ops


def _pil_round_trip(a: np.ndarray, resample) -> np.ndarray:
    img = Image.fromarray(a)
    w, h = img.size
    return np.asarray(img.resize((512, int(512 * h / w)), resample).resize((w, h), resample))


def _pil_pose_map(keypoints: np.ndarray, h: int, w: int) -> np.ndarray:
    out = np.empty((h, w, 18), np.float32)
    for i, (x, y, _) in enumerate(keypoints):
        canvas = Image.new("L", (w, h))
        if x > 1 and y > 1:
            ImageDraw.Draw(canvas).rectangle((x - 5, y - 5, x + 5, y + 5), "white", "white")
        rgb = _pil_round_trip(np.asarray(canvas.convert("RGB")), Image.BICUBIC)
        out[..., i] = (rgb[..., 0].astype(np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5)
    return out


@pytest.mark.parametrize("h, w", [(256, 192), (64, 48), (100, 75)])
def test_round_trips_equal_pil(h, w):
    rng = np.random.default_rng(h)
    rgb = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    rgb[1] = np.clip(np.arange(h)[:, None, None] * 3 + np.arange(w)[None, :, None] * 5, 0, 255)  # smooth + edges
    ours = np.asarray(jax.jit(lambda x: loader_ops.round_trip(x, True))(rgb))
    for i in range(2):
        np.testing.assert_array_equal(ours[i], _pil_round_trip(rgb[i], Image.BICUBIC))
    label = rng.integers(0, 14, (1, h, w, 1), dtype=np.uint8)
    ours = np.asarray(loader_ops.round_trip(jnp.asarray(label), False))
    np.testing.assert_array_equal(ours[0, ..., 0], _pil_round_trip(label[0, ..., 0], Image.NEAREST))


def test_pose_maps_equal_pil_including_float64_corner_cases():
    rng = np.random.default_rng(1)
    for _ in range(5):
        kp = np.stack([rng.uniform(-10, 200, 18), rng.uniform(-10, 265, 18), np.ones(18)], 1)
        kp[0, :2] = [95.99999999999999, 16.000000000000004]  # float32 would round these across an integer
        kp[1, :2] = [0, 0]  # missing point
        kp[2, :2] = [1.0, 50.0]  # x > 1 fails: not drawn
        ours = np.asarray(loader_ops.pose_maps(jnp.asarray(loader_ops.pose_boxes(kp))[None], 256, 192))[0]
        np.testing.assert_array_equal(ours, _pil_pose_map(kp, 256, 192))
