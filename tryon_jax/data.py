"""Reading try-on samples in the ACGPN layout and making the original loader's tensors.

One implementation of decoding and of the loader's quirks (golden README, data loader):
every image makes a PIL round trip to width 512 and back (BICUBIC for image/color/pose,
NEAREST for label/edge), pose keypoints become 18 maps of 11x11 white squares. Errors name
the file and the problem.
"""
import dataclasses
import json
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

HEIGHT, WIDTH = 256, 192
LOAD_WIDTH = 512  # loadSize with resize_or_crop='scale_width'
NUM_KEYPOINTS = 18
POSE_RADIUS = 5
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


def open_image(path: str, mode: str, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Image.Image:
    """Decode an image file into a PIL image of the given mode, checking its size (W, H)."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: file not found")
    try:
        with Image.open(path) as img:
            img.load()
            if img.size != size:
                raise DataError(f"{path}: image is {img.size[0]}x{img.size[1]} (WxH), expected {size[0]}x{size[1]}")
            return img.convert(mode)
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


def _round_trip(img: Image.Image, resample) -> Image.Image:
    """Quirk 1: resize to width 512 (height int(512*H/W)) and back to the original size."""
    w, h = img.size
    big = img.resize((LOAD_WIDTH, int(LOAD_WIDTH * h / w)), resample)
    return big.resize((w, h), resample)


def _to_float(img: Image.Image, normalize: bool) -> np.ndarray:
    a = np.asarray(img, dtype=np.float32) / np.float32(255)
    if a.ndim == 2:
        a = a[..., None]
    return (a - np.float32(0.5)) / np.float32(0.5) if normalize else a


def pose_maps(keypoints: np.ndarray, size: tuple[int, int] = (WIDTH, HEIGHT)) -> np.ndarray:
    """(H, W, 18) maps in [-1, 1]: per keypoint with x > 1 and y > 1 a filled square of radius 5
    drawn on black, converted to RGB, round-tripped (BICUBIC) and normalised; channel 0 kept."""
    maps = np.empty((size[1], size[0], NUM_KEYPOINTS), np.float32)
    for i, (x, y, _) in enumerate(keypoints):
        canvas = Image.new("L", size)
        if x > 1 and y > 1:
            ImageDraw.Draw(canvas).rectangle((x - POSE_RADIUS, y - POSE_RADIUS, x + POSE_RADIUS, y + POSE_RADIUS),
                                             "white", "white")
        maps[..., i] = _to_float(_round_trip(canvas.convert("RGB"), Image.BICUBIC), True)[..., 0]
    return maps


def check_label(label: np.ndarray, path: str) -> np.ndarray:
    bad = np.unique(label[label >= NUM_LABELS])
    if bad.size:
        raise DataError(f"{path}: label values {bad.tolist()} are outside the 14 ACGPN classes 0..13")
    return label


def load_example(root: str, pair: Pair, split: str = "test") -> dict[str, np.ndarray]:
    """The ACGPN loader's tensors for one pair from a folder in ACGPN layout
    ({split}_img, {split}_label, {split}_edge, {split}_color, {split}_pose), NHWC float32."""
    stem = os.path.splitext(pair.person)[0]
    cloth_stem = os.path.splitext(pair.cloth)[0]
    label_path = _find(root, f"{split}_label", stem, (".png",))
    label_img = open_image(label_path, "L")
    check_label(np.asarray(label_img), label_path)
    label = np.asarray(_round_trip(label_img, Image.NEAREST), np.float32)[..., None]
    image = _to_float(_round_trip(open_image(_find(root, f"{split}_img", stem), "RGB"), Image.BICUBIC), True)
    edge = _to_float(_round_trip(open_image(_find(root, f"{split}_edge", cloth_stem), "L"), Image.NEAREST), False)
    color = _to_float(_round_trip(open_image(_find(root, f"{split}_color", cloth_stem), "RGB"), Image.BICUBIC), True)
    keypoints = read_pose(os.path.join(root, f"{split}_pose", f"{stem}_keypoints.json"))
    return {"label": label, "image": image, "edge": edge, "color": color, "pose": pose_maps(keypoints)}


def _find(root: str, folder: str, stem: str, exts: Sequence[str] = (".jpg", ".png", ".jpeg")) -> str:
    for ext in exts:
        path = os.path.join(root, folder, stem + ext)
        if os.path.isfile(path):
            return path
    raise DataError(f"{os.path.join(root, folder, stem + exts[0])}: file not found")


def stack(examples: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([e[k] for e in examples]) for k in examples[0]}
