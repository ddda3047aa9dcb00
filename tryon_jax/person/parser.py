"""The human parser at inference: ACGPN's 14-label map (and heatmap keypoints, an all-JAX pose
fallback) for person images framed like VITON (256x192).

Weights: the committed float16 file weights/parser.npz (trained with configs/parser.py on
VITON; research use only, as VITON) or any parser.npz a training run wrote.
"""
import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from tryon_jax.core import xla_cpu
from tryon_jax.models.parser import HEATMAP_STRIDE, NUM_LABELS, Parser, check_scales
from tryon_jax.models.parser import predict as predict_labels
from tryon_jax.weights.params_io import unflatten

WEIGHTS = Path(__file__).resolve().parent / "weights" / "parser.npz"
HEIGHT, WIDTH = 256, 192


def keypoints_from_heatmaps(heatmaps, threshold: float = 0.3):
    """(B, h, w, 18) heatmaps -> (B, 18, 3) pixel keypoints (x, y, peak) of the full frame;
    the peak position is refined by the heatmap-weighted mean of its 3x3 neighbourhood;
    peaks below ``threshold`` are missing (0, 0, 0), OpenPose's convention."""
    b, h, w, k = heatmaps.shape
    flat = heatmaps.reshape(b, h * w, k)
    idx = jnp.argmax(flat, axis=1)
    peak = jnp.max(flat, axis=1)
    py, px = idx // w, idx % w
    pad = jnp.pad(heatmaps, ((0, 0), (1, 1), (1, 1), (0, 0)))
    offsets = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])

    def around(dy, dx):
        return jnp.take_along_axis(pad.reshape(b, (h + 2) * (w + 2), k),
                                   ((py + 1 + dy) * (w + 2) + px + 1 + dx)[:, None, :], axis=1)[:, 0]

    vals = jnp.stack([jnp.maximum(around(dy, dx), 0) for dy, dx in offsets.tolist()], 0)
    total = vals.sum(0) + 1e-6
    fy = py + jnp.einsum("n,nbk->bk", offsets[:, 0].astype(jnp.float32), vals) / total
    fx = px + jnp.einsum("n,nbk->bk", offsets[:, 1].astype(jnp.float32), vals) / total
    x = (fx + 0.5) * HEATMAP_STRIDE - 0.5
    y = (fy + 0.5) * HEATMAP_STRIDE - 0.5
    found = peak >= threshold
    return jnp.where(found[..., None], jnp.stack([x, y, peak], -1), 0.0)


PALETTE = np.array([[0, 0, 0], [128, 0, 0], [255, 85, 0], [0, 85, 85], [255, 170, 0], [51, 170, 221], [0, 255, 255],
                    [85, 51, 0], [0, 85, 0], [85, 255, 170], [170, 255, 85], [0, 0, 255], [0, 0, 85],
                    [255, 255, 0]], np.uint8)


def colour_labels(label: np.ndarray) -> np.ndarray:
    return PALETTE[np.asarray(label).astype(np.int64)]


def load_weights(path: str | os.PathLike | None = None) -> tuple[dict, dict]:
    """(params as float32, metadata) from a parser .npz and the .json next to it."""
    path = Path(path) if path else WEIGHTS
    hint = "pass the parser.npz written by `python main.py --config=configs/parser.py --workdir=DIR`"
    if not path.is_file():
        raise FileNotFoundError(f"parser weights {path} not found; {hint}")
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    except ValueError as e:
        raise ValueError(f"{meta_path}: not valid JSON ({e}); {hint}") from e
    try:
        with np.load(path, allow_pickle=False) as npz:
            flat = {k: np.asarray(npz[k], np.float32) for k in npz.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a parser weights file ({e}); {hint}") from e
    if meta.get("label_bias") is not None:
        try:
            bias = np.asarray(meta["label_bias"], np.float32)
        except (TypeError, ValueError):
            bias = None
        if bias is None or bias.shape != (NUM_LABELS,) or not np.all(np.isfinite(bias)):
            raise ValueError(f"{meta_path}: label_bias must be {NUM_LABELS} finite numbers; {hint}")
    try:
        check_scales(meta.get("test_time_scales", (1.0,)))
    except ValueError as e:
        raise ValueError(f"{meta_path}: {e}; {hint}") from None
    params = unflatten(flat)
    model = Parser.from_meta(meta)
    expected = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, HEIGHT, WIDTH, 3))))["params"]
    got = jax.tree.map(np.shape, params)
    want = jax.tree.map(lambda s: tuple(s.shape), expected)
    if got != want:
        raise ValueError(f"{path}: parameters do not fit the parser with widths {model.widths}; {hint}")
    return params, meta


class HumanParser:
    """``parse(images)``: (B, 256, 192, 3) uint8 RGB -> (B, 256, 192) uint8 ACGPN labels and
    (B, 18, 3) heatmap keypoints (x, y, peak; missing = 0). Batches are padded to
    ``batch_size`` so one compilation serves every call. ``flip`` (default: the weights file's
    ``test_time_flip``) also parses the mirrored image, ``scales`` (default: the file's
    ``test_time_scales``, else 1 alone) resized copies, and averages (models.parser.log_probs);
    the file's ``label_bias`` (tryon_jax.person.training.parser_calibrate), if any, is added before the argmax."""

    def __init__(self, weights: str | os.PathLike | None = None, batch_size: int = 16, flip: bool | None = None,
                 scales=None):
        params, self.meta = load_weights(weights)
        self.params = jax.device_put(params)
        self.batch_size = batch_size
        self.flip = bool(self.meta.get("test_time_flip", False)) if flip is None else flip
        self.scales = check_scales(self.meta.get("test_time_scales", (1.0,)) if scales is None else scales)
        model = Parser.from_meta(self.meta)
        bias = self.meta.get("label_bias")

        @xla_cpu.jit
        def predict(params, images):
            labels, heatmaps = predict_labels(model, params, images.astype(jnp.float32) / 127.5 - 1, self.flip, bias,
                                              self.scales)
            return labels.astype(jnp.uint8), keypoints_from_heatmaps(heatmaps)

        self._predict = predict

    def parse(self, images) -> tuple[np.ndarray, np.ndarray]:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != (HEIGHT, WIDTH, 3) or images.dtype != np.uint8:
            raise ValueError(f"expected (B, {HEIGHT}, {WIDTH}, 3) uint8 images, got {images.dtype} {images.shape}")
        labels, keypoints = [], []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch_size - len(chunk), 0)])
            lab, kp = jax.device_get(self._predict(self.params, padded))
            labels.append(lab[:len(chunk)])
            keypoints.append(kp[:len(chunk)])
        if not labels:
            return np.zeros((0, HEIGHT, WIDTH), np.uint8), np.zeros((0, 18, 3), np.float32)
        return np.concatenate(labels), np.concatenate(keypoints)
