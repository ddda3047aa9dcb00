"""Dress Code (Morelli et al., ECCV 2022) for virtual try-on, in VITON's features and ACGPN's 14 labels.

The data cannot be downloaded (the authors grant it on request, non-commercial research licence): the
manual folder is the DressCode root holding the category folders (or one category folder itself), each in
the official layout::

    <category>/images/ID_0.jpg          person, full body, 768x1024 (W x H)
    <category>/images/ID_1.jpg          the garment alone (in-shop photo)
    <category>/label_maps/ID_4.png      18 ATR classes at the photo's size (see ATR_TO_ACGPN)
    <category>/keypoints/ID_2.json      {"keypoints": [[x, y, confidence, id] x 18]} in the 384x512 frame
    <category>/train_pairs.txt, test_pairs_paired.txt, test_pairs_unpaired.txt   ('ID_0.jpg ID_1.jpg' lines)

Build (array_record, no TensorFlow needed)::

    python -m tryon_datasets.tfds_cli build datasets/dresscode --config=lower_body \\
        --manual_dir=DRESSCODE --data_dir=DATA
    # configs: {upper_body,lower_body,dresses} (256x192) and the same with _512 (512x384);
    # a _lenient suffix skips bad samples and counts them in the metadata

Each example has exactly the VITON builder's features at the config's size, so
tryon_jax.data.input_pipeline reads ``dress_code/<config>`` unchanged: the person (area-averaged from the
3:4 photo), the label map (ATR -> ACGPN, then nearest), the pose keypoints (scaled from the 384x512 frame),
the paired garment and the unpaired one (test: the official unpaired list; train: the paired garment),
each with a cloth mask computed from the garment photo by crawler.cloth_mask (Dress Code ships none),
and difficulty 'unknown'. The official test lists hold the same persons in another order: a test person
without a line in test_pairs_unpaired.txt is a bad sample. Resized photos are stored as JPEG (quality 95),
label maps and masks as PNG.

Keypoint files list the 18 OpenPose points in row order; their fourth value is the pose detector's
candidate id (it skips when a part has several candidates), not the part, and is ignored. Missing points
(confidence 0 at (-1, -1), or at (0, 0)) become (0, 0, 0) as in VITON's OpenPose files.
"""
import dataclasses
import io
import json
import os
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from crawler import cloth_mask
from tryon_datasets.viton.viton import features
from tryon_jax.data import samples

CATEGORIES = ("upper_body", "lower_body", "dresses")
KEYPOINT_WIDTH, KEYPOINT_HEIGHT = 384, 512  # the frame of the keypoint files
PAIR_LISTS = {"train": ("train_pairs.txt", None), "test": ("test_pairs_paired.txt", "test_pairs_unpaired.txt")}
JPEG_QUALITY = 95

# ATR class (Dress Code label_maps) -> ACGPN label id (0 background, 1 hair, 2 jumpsuit, 3 socks, 4 upper
# clothes, 5 right shoe, 6 left shoe, 7 dress ('noise' in ACGPN), 8 pants, 9 right leg, 10 left leg,
# 11 left arm, 12 face, 13 right arm). Where ATR has LIP's class it follows LIP_TO_ACGPN of the VITON
# builder; left/right as in LIP (checked on real pairs: ATR's left arm, leg and shoe lie on the side of
# OpenPose's left keypoints, as LIP's do on VITON). Decisions for the classes LIP lacks or treats apart:
# skirt -> pants (8): in Dress Code a skirt is a lower-body target garment (the LIP lookup drops skirts);
# belt -> pants (8): worn with the bottoms and replaced with them; head -> face (12); bag -> background.
ATR_TO_ACGPN = np.array([
    0,   # 0 background
    0,   # 1 hat
    1,   # 2 hair
    0,   # 3 sunglasses
    4,   # 4 upper clothes
    8,   # 5 skirt
    8,   # 6 pants
    7,   # 7 dress
    8,   # 8 belt
    6,   # 9 left shoe
    5,   # 10 right shoe
    12,  # 11 head
    10,  # 12 left leg
    9,   # 13 right leg
    11,  # 14 left arm
    13,  # 15 right arm
    0,   # 16 bag
    0,   # 17 scarf
], np.uint8)


@dataclasses.dataclass
class DressCodeConfig(tfds.core.BuilderConfig):
    category: str = "lower_body"
    height: int = samples.HEIGHT
    width: int = samples.WIDTH
    skip_bad: bool = False  # skip bad samples (counted in the metadata) instead of failing


def _configs() -> list[DressCodeConfig]:
    configs = []
    for skip_bad in (False, True):
        for suffix, (height, width) in (("", (256, 192)), ("_512", (512, 384))):
            for category in CATEGORIES:
                name = category + suffix + ("_lenient" if skip_bad else "")
                what = f"{category}, {height}x{width}" + ("; bad samples skipped and counted" if skip_bad else "")
                configs.append(DressCodeConfig(name=name, category=category, height=height, width=width,
                                               skip_bad=skip_bad, description=what))
    return configs


class DressCode(tfds.core.GeneratorBasedBuilder):
    """Dress Code person / garment / parse / pose as VITON examples with ACGPN labels and official pairs."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__
    BUILDER_CONFIGS = _configs()

    def _info(self):
        cfg = self.builder_config
        return self.dataset_info_from_configs(
            features=features(cfg.height, cfg.width),
            metadata=tfds.core.MetadataDict(),
            homepage="https://github.com/aimagelab/dress-code",
            citation="Morelli et al., Dress Code: High-Resolution Multi-Category Virtual Try-On, ECCV 2022.",
        )

    def _split_generators(self, dl_manager):
        folder = category_folder(os.fspath(dl_manager.manual_dir), self.builder_config.category)
        splits = {split: self._generate_examples(folder, split) for split, (paired, _) in PAIR_LISTS.items()
                  if os.path.isfile(os.path.join(folder, paired))}
        if not splits:
            raise FileNotFoundError(f"{folder}: neither train_pairs.txt nor test_pairs_paired.txt")
        self.info.metadata["skipped"] = {}
        return splits

    def _generate_examples(self, folder, split):
        cfg = self.builder_config
        size = (cfg.width, cfg.height)
        paired_name, unpaired_name = PAIR_LISTS[split]
        pairs = samples.read_pairs(os.path.join(folder, paired_name))
        unpaired_path = unpaired_name and os.path.join(folder, unpaired_name)
        unpaired = {p.person: p.cloth for p in samples.read_pairs(unpaired_path)} if unpaired_path else {}
        skipped = self.info.metadata["skipped"].setdefault(split, {"count": 0, "reasons": []})
        for pair in pairs:
            stem = os.path.splitext(pair.person)[0]
            try:
                if unpaired_path and pair.person not in unpaired:
                    raise samples.DataError(f"{unpaired_path}: no line for the person {pair.person}")
                cloth = garment(folder, pair.cloth, size)
                other = unpaired.get(pair.person, pair.cloth)
                example = {
                    "person_id": stem,
                    **person(folder, pair.person, size),
                    "cloth": cloth,
                    "unpaired_cloth": cloth if other == pair.cloth else garment(folder, other, size),
                    "difficulty": "unknown",
                }
            except samples.DataError as e:
                if not cfg.skip_bad:
                    raise
                skipped["count"] += 1
                skipped["reasons"].append(str(e))
                continue
            yield stem, example


def category_folder(root: str, category: str) -> str:
    """root/category, or root itself when it is a category folder (it has images/)."""
    if os.path.isdir(os.path.join(root, category)):
        return os.path.join(root, category)
    name = os.path.basename(os.path.normpath(root))
    if name in CATEGORIES and name != category:
        raise FileNotFoundError(f"{root}: this is the {name} folder, the config wants {category}")
    if os.path.isdir(os.path.join(root, "images")):
        return root
    raise FileNotFoundError(f"{root}: no {category}/ folder (nor images/); pass the DressCode root")


def person(folder: str, name: str, size: tuple[int, int]) -> dict:
    """The person photo, ACGPN label map and keypoints of ``images/<name>`` at size (W, H)."""
    base = os.path.splitext(name)[0].rsplit("_", 1)[0]
    path = os.path.join(folder, "images", name)
    raw, photo = open_photo(path)
    label_path = os.path.join(folder, "label_maps", f"{base}_4.png")
    atr = read_atr_label(label_path, photo.size)
    label = Image.fromarray(ATR_TO_ACGPN[atr]).resize(size, Image.Resampling.NEAREST)
    return {"image": _photo_bytes(raw, photo, size), "label": _png(np.asarray(label)),
            "pose_keypoints": read_keypoints(os.path.join(folder, "keypoints", f"{base}_2.json"), size)}


def garment(folder: str, name: str, size: tuple[int, int]) -> dict:
    """The garment photo ``images/<name>`` at size (W, H) with its cloth mask (0 / 255), computed on the
    full-size photo, area-averaged and thresholded at half."""
    path = os.path.join(folder, "images", name)
    raw, photo = open_photo(path)
    mask = cloth_mask.cloth_mask(np.asarray(photo))
    if not mask.any():
        raise samples.DataError(f"{path}: no garment found on a plain background (empty cloth mask)")
    small = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.BOX)
    mask = np.where(np.asarray(small) >= 128, 255, 0).astype(np.uint8)
    return {"id": os.path.splitext(name)[0], "image": _photo_bytes(raw, photo, size), "mask": _png(mask)}


def open_photo(path: str) -> tuple[bytes, Image.Image]:
    """(file bytes, RGB image) of a 3:4 photo; DataError naming the file otherwise."""
    if not os.path.isfile(path):
        raise samples.DataError(f"{path}: file not found")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            photo = img.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise samples.DataError(f"{path}: cannot decode image ({e})") from e
    width, height = photo.size
    if width * 4 != height * 3:
        raise samples.DataError(f"{path}: image is {width}x{height} (WxH), not 3:4 like Dress Code's 768x1024")
    return raw, photo


def read_atr_label(path: str, size: tuple[int, int]) -> np.ndarray:
    """The ATR class ids (H, W) uint8 of a label map that must have the person photo's size (W, H)."""
    img = samples.open_image(path, None, size)  # palette indices, never converted to grey
    if img.mode not in ("P", "L"):
        raise samples.DataError(f"{path}: label map has mode {img.mode}, expected class ids (mode P or L)")
    atr = np.asarray(img)
    bad = np.unique(atr[atr >= len(ATR_TO_ACGPN)])
    if bad.size:
        raise samples.DataError(f"{path}: label values {bad.tolist()} are outside the 18 ATR classes 0..17")
    return atr


def read_keypoints(path: str, size: tuple[int, int]) -> np.ndarray:
    """(18, 3) float64 (x, y, confidence) at size (W, H) from a Dress Code keypoint file."""
    if not os.path.isfile(path):
        raise samples.DataError(f"{path}: keypoint file not found")
    try:
        with open(path) as f:
            doc = json.load(f)
        points = np.asarray(doc["keypoints"], np.float64)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise samples.DataError(f"{path}: not a Dress Code keypoint file ({type(e).__name__}: {e})") from e
    if points.ndim != 2 or points.shape[0] != samples.NUM_KEYPOINTS or points.shape[1] < 3:
        raise samples.DataError(f"{path}: expected 18 keypoints [x, y, confidence, id], got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise samples.DataError(f"{path}: keypoints contain NaN or infinity")
    x, y, confidence = points[:, 0], points[:, 1], points[:, 2]
    out = np.stack([x * size[0] / KEYPOINT_WIDTH, y * size[1] / KEYPOINT_HEIGHT, confidence], axis=1)
    out[(confidence <= 0) | (x < 0) | (y < 0) | ((x == 0) & (y == 0))] = 0
    return out


def _photo_bytes(raw: bytes, photo: Image.Image, size: tuple[int, int]) -> bytes:
    """The file's own bytes when it is an RGB JPEG of the right size; else the area-averaged resize as JPEG."""
    with Image.open(io.BytesIO(raw)) as original:
        if original.size == size and original.format == "JPEG" and original.mode == "RGB":
            return raw
    buf = io.BytesIO()
    photo.resize(size, Image.Resampling.BOX).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()
