"""What a product photo shows: one garment alone, several garments, or a garment worn by a person.

A shop lists a product with several photos: the garment alone (a flat lay, a ghost mannequin),
colour variants side by side, and, most often, a model wearing it (whole, or only the legs, or a
torso without a head). Only the first kind can be tried on. ``classify`` decides from cues that
need no model, measured on 375 real Musinsa product photos labelled by hand (108 garment,
37 garments, 230 worn; local evaluation only, see the README):

- Single garments are shot on a uniform background: the spread (std) of the photo's border
  ring, at 400 pixels on the long side, is at most 3 grey levels for 79 of the 108, and above
  it for 229 of the 230 worn photos. When the border is not uniform, the photo is worn if the
  background is not white (mean <= 247: a studio's grey floor and wall), if it shows skin
  (YCrCb skin tones over > 1% of the photo) or if the garment region runs into the photo's
  edge over > 5% of a side (a person cut by the frame; flat lays keep a margin).
- Several garments: two or more garment-sized regions (the second at least 0.3 of the
  largest), or two or more large regions of clearly different colours within everything that
  differs from the background but for shadows (darker than the background in its own hue):
  colour variants touching or overlapping, a white one too.

On those 375 photos: accuracy 0.928; worn photos taken for a garment (the costly error) 1 of
230; single garments accepted 92 of 108 (13 taken for worn: garments filling a thumbnail to
its edges); several garments taken for one 6 of 37 (piles of one colour). VITON's 16 sample
persons are all worn; the ten Dress Code pairs here: 10 garments, 10 worn.
"""
import hashlib
import io
import os

import cv2
import numpy as np
from PIL import Image

from crawler.cloth_mask import cloth_mask, frame, masks

KINDS = ("garment", "garments", "worn")
SIZE = 400  # the long side the cues are computed at
MIN_SIDE = 32
BORDER = 4  # pixels of the border ring at that size
UNIFORM_SPREAD = 3.0  # border ring std (grey levels) of a plain background
WHITE = 247.0  # border ring mean above which the background is white
SKIN_FRACTION = 0.01
EDGE_FRACTION = 0.05
SECOND_REGION = 0.3
SHADOW_CHROMA = 3.0  # CIELAB a, b distance (OpenCV's 8-bit scale) of a shadow from its background
COLOUR_REGION, COLOUR_DISTANCE = 0.12, 30.0  # of the garment's pixels; CIELAB distance (OpenCV's 8-bit scale)


def _small(rgb: np.ndarray) -> np.ndarray:
    scale = SIZE / max(rgb.shape[:2])
    return cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb


def _ring(rgb: np.ndarray) -> np.ndarray:
    b = BORDER
    return np.concatenate([rgb[:b].reshape(-1, 3), rgb[-b:].reshape(-1, 3), rgb[b:-b, :b].reshape(-1, 3),
                           rgb[b:-b, -b:].reshape(-1, 3)]).astype(np.float32)


def skin_fraction(rgb: np.ndarray) -> float:
    """Fraction of pixels in the usual YCrCb skin range (Cr 135-175, Cb 85-135, Y > 60)."""
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    y, cr, cb = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    return float(np.mean((cr >= 135) & (cr <= 175) & (cb >= 85) & (cb <= 135) & (y > 60)))


def colour_regions(rgb: np.ndarray, mask: np.ndarray, k: int = 4) -> int:
    """How many clearly different colours each form a large connected region of the garment."""
    pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)[mask]
    if len(pixels) < 50:
        return 0
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    cv2.setRNGSeed(0)
    _, labels, centres = cv2.kmeans(pixels, k, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    full = np.full(mask.shape, -1, np.int32)
    full[mask] = labels[:, 0]
    large = []
    for c in range(k):
        region = cv2.morphologyEx((full == c).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        n, _, stats, _ = cv2.connectedComponentsWithStats(region, connectivity=8)
        if n > 1 and stats[1:, cv2.CC_STAT_AREA].max() >= COLOUR_REGION * mask.sum():
            large.append(centres[c])
    distinct = [c for i, c in enumerate(large) if all(np.linalg.norm(c - d) > COLOUR_DISTANCE for d in large[:i])]
    return len(distinct)


def cues(rgb: np.ndarray) -> dict:
    """The measurements ``classify`` decides from (uint8 HxWx3 RGB)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"classify needs an RGB uint8 image, got {rgb.dtype} {rgb.shape}")
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise ValueError(f"a {rgb.shape[1]}x{rgb.shape[0]} photo is too small to tell "
                         f"(at least {MIN_SIDE} pixels a side)")
    small = _small(rgb)
    ring = _ring(small)
    mask, outline = masks(small)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    background = np.median(cv2.cvtColor(ring[None].astype(np.uint8), cv2.COLOR_RGB2LAB)[0].astype(np.float32), axis=0)
    chroma = np.linalg.norm(lab[..., 1:] - background[1:], axis=2)
    shadow = (lab[..., 0] < background[0] - 2) & (chroma < SHADOW_CHROMA) & ~mask  # darker, its own hue
    sides = (mask[0], mask[-1], mask[:, 0], mask[:, -1])
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = sorted(stats[1:, cv2.CC_STAT_AREA].tolist(), reverse=True)
    return {"border_spread": float(ring.std(axis=0).mean()), "border_mean": float(ring.mean()),
            "skin": skin_fraction(small), "edge": float(max(s.mean() for s in sides)),
            "garment_area": float(mask.mean()),
            "regions": sum(a >= SECOND_REGION * areas[0] for a in areas) if areas else 0,
            "colours": colour_regions(small, mask | (outline & ~shadow))}


def decide(c: dict) -> str:
    """The kind of photo from its cues."""
    if c["border_spread"] > UNIFORM_SPREAD and (c["border_mean"] <= WHITE or c["skin"] > SKIN_FRACTION
                                                or c["edge"] > EDGE_FRACTION):
        return "worn"
    if c["regions"] >= 2 or c["colours"] >= 2:
        return "garments"
    return "garment"


def classify(rgb: np.ndarray) -> str:
    """'garment' (one garment alone), 'garments' (several) or 'worn' (on a person, whole or in
    part) for a uint8 HxWx3 RGB product photo."""
    return decide(cues(rgb))


class ProductPhotoError(ValueError):
    """A product whose stored photos give no garment to try on; ``reason`` is a short code
    (no_garment_photo, bad_photo, no_photos) the catalogue and the builder count."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def read_photo(root: str, image: dict) -> np.ndarray:
    """A crawled photo (items.jsonl's {"file", "sha256"}) as RGB, or ProductPhotoError naming it."""
    path = os.path.join(root, image["file"])
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ProductPhotoError(f"{path}: cannot read ({e.strerror or e})", "bad_photo") from e
    if hashlib.sha256(data).hexdigest() != image["sha256"]:
        raise ProductPhotoError(f"{path}: sha256 differs from items.jsonl (file changed or truncated)", "bad_photo")
    try:
        with Image.open(io.BytesIO(data)) as im:
            rgb = np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ProductPhotoError(f"{path}: not a readable image ({e})", "bad_photo") from e
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise ProductPhotoError(f"{path}: {rgb.shape[1]}x{rgb.shape[0]} pixels, too small", "bad_photo")
    return rgb


def choose(photos: list[np.ndarray]) -> tuple[int | None, list[str]]:
    """(index of the best photo of one garment alone, or None; every photo's kind). The best has
    the most garment pixels (the largest, least cropped view)."""
    kinds, best, most = [], None, 0.0
    for i, rgb in enumerate(photos):
        c = cues(rgb)
        kinds.append(decide(c))
        pixels = c["garment_area"] * rgb.shape[0] * rgb.shape[1]
        if kinds[-1] == "garment" and pixels > most:
            best, most = i, pixels
    return best, kinds


def product_cloth(root: str, item: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """(cloth (256, 192, 3), mask (256, 192) uint8 0/255, the photo used) of a crawled product:
    its best photo of the garment alone, framed like VITON. ProductPhotoError (with its reason)
    when no stored photo shows the garment alone, or a photo is missing, changed or unreadable."""
    images = item.get("images") or []
    if not images:
        raise ProductPhotoError(f"product {item.get('goodsNo')}: no stored photos", "no_photos")
    photos = [read_photo(root, image) for image in images]
    best, kinds = choose(photos)
    if best is None:
        counts = ", ".join(f"{kinds.count(k)} {k}" for k in KINDS if k in kinds)
        raise ProductPhotoError(f"product {item.get('goodsNo')}: no photo of the garment alone ({counts})",
                                "no_garment_photo")
    return (*frame(photos[best], cloth_mask(photos[best])), images[best])
