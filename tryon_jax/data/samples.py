"""Reading try-on samples: decoding with checks, pair lists, pose JSON.

The host side only decodes (uint8 arrays, pose boxes); the original loader's per-pixel
quirks run on device in loader_ops. Errors name the file and the problem.
"""
import dataclasses
import json
import os
from collections.abc import Sequence

import jax
import numpy as np
from PIL import Image

from tryon_jax.data import loader_ops

HEIGHT, WIDTH = 256, 192
NUM_KEYPOINTS = 18
NUM_LABELS = 14
Image.MAX_IMAGE_PIXELS = 64_000_000  # refuse decompression bombs


class DataError(ValueError):
    """A bad input file: the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class Pair:
    person: str  # e.g. 000001_0.jpg
    cloth: str   # e.g. 001744_1.jpg


def read_pairs(path: str) -> list[Pair]:
    """A pair list: one 'person.jpg cloth.jpg' per line (blank lines ignored)."""
    pairs = []
    try:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2:
                    raise DataError(f"{path}:{number}: expected 'person cloth', got {line.strip()!r}")
                pairs.append(Pair(*parts))
    except FileNotFoundError:
        raise DataError(f"{path}: pair list not found") from None
    if not pairs:
        raise DataError(f"{path}: the pair list is empty")
    return pairs


def open_image(path: str, mode: str | None, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Image.Image:
    """Decode an image file into a PIL image of the given mode (None: as stored, e.g. palette
    indices), checking its size (W, H)."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: file not found")
    try:
        with Image.open(path) as img:
            img.load()
            if img.size != size:
                raise DataError(f"{path}: image is {img.size[0]}x{img.size[1]} (WxH), expected {size[0]}x{size[1]}")
            return img.convert(mode) if mode else img.copy()
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: cannot decode image ({e})") from e


def read_pose(path: str) -> np.ndarray:
    """OpenPose JSON -> (18, 3) float64 (x, y, confidence). Accepts ``pose_keypoints`` (VITON)
    and ``pose_keypoints_2d`` (newer OpenPose); uses the first person."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: pose file not found")
    try:
        with open(path) as f:
            doc = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from e
    people = doc.get("people") if isinstance(doc, dict) else None
    if not people or not isinstance(people, list) or not isinstance(people[0], dict):
        raise DataError(f"{path}: no person in the pose file ('people' is empty or missing)")
    person = people[0]
    values = person.get("pose_keypoints", person.get("pose_keypoints_2d"))
    if values is None:
        raise DataError(f"{path}: neither 'pose_keypoints' nor 'pose_keypoints_2d' is present")
    try:
        points = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{path}: keypoints are not numbers ({e})") from e
    if points.size != NUM_KEYPOINTS * 3:
        raise DataError(f"{path}: expected {NUM_KEYPOINTS} keypoints x 3 values = 54 numbers, got {points.size}")
    if not np.all(np.isfinite(points)):
        raise DataError(f"{path}: keypoints contain NaN or infinity")
    return points.reshape(NUM_KEYPOINTS, 3)


def check_label(label: np.ndarray, path: str) -> np.ndarray:
    bad = np.unique(label[label >= NUM_LABELS])
    if bad.size:
        raise DataError(f"{path}: label values {bad.tolist()} are outside the 14 ACGPN classes 0..13")
    return label


def load_raw(root: str, pair: Pair, split: str = "test", cloth: dict | None = None) -> dict[str, np.ndarray]:
    """Decode one pair from a folder in ACGPN layout ({split}_img, {split}_label, {split}_edge,
    {split}_color, {split}_pose): uint8 images, the integer pose boxes and the keypoints.
    ``cloth``: {"color": (H, W, 3), "edge": (H, W, 1)} uint8 from elsewhere (e.g. the Musinsa
    dataset) instead of the folder's. The loader's per-pixel work happens on device."""
    stem = os.path.splitext(pair.person)[0]
    cloth_stem = os.path.splitext(pair.cloth)[0]
    label_path = find_file(root, f"{split}_label", stem, (".png",))
    label = check_label(np.asarray(open_image(label_path, "L")), label_path)
    keypoints = read_pose(os.path.join(root, f"{split}_pose", f"{stem}_keypoints.json"))
    if cloth is None:
        cloth = {"edge": np.asarray(open_image(find_file(root, f"{split}_edge", cloth_stem), "L"))[..., None],
                 "color": np.asarray(open_image(find_file(root, f"{split}_color", cloth_stem), "RGB"))}
    return {
        "label": label[..., None],
        "image": np.asarray(open_image(find_file(root, f"{split}_img", stem), "RGB")),
        "edge": cloth["edge"],
        "color": cloth["color"],
        "pose_boxes": loader_ops.pose_boxes(keypoints),
        "pose_keypoints": keypoints.astype(np.float32),
    }


def load_example(root: str, pair: Pair, split: str = "test") -> dict[str, np.ndarray]:
    """The original loader's tensors (NHWC float32) for one pair; see loader_ops.prepare."""
    raw = load_raw(root, pair, split)
    out = _prepare_one({k: v[None] for k, v in raw.items() if k in RAW_KEYS})
    return {k: np.asarray(v[0]) for k, v in out.items()}


RAW_KEYS = ("label", "image", "edge", "color", "pose_boxes")


@jax.jit
def _prepare_one(raw):
    return loader_ops.prepare(raw)


def find_file(root: str, folder: str, stem: str, exts: Sequence[str] = (".jpg", ".png", ".jpeg")) -> str:
    for ext in exts:
        path = os.path.join(root, folder, stem + ext)
        if os.path.isfile(path):
            return path
    raise DataError(f"{os.path.join(root, folder, stem + exts[0])}: file not found")


def stack(examples: Sequence[dict[str, np.ndarray]], keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    return {k: np.stack([e[k] for e in examples]) for k in (keys or examples[0])}
