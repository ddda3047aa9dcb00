"""Cloth masks for product photos (a garment on a plain light background) and VITON framing.

mask: background colour from the image border (median), per-pixel colour distance to it,
a threshold (Otsu on the distance, floored), closing then opening, the large connected
components (swatch dots and labels dropped), holes filled. For a garment close to the
background's colour (white or light grey on white or light grey) that loses most of it: then
an outline mask (any difference beyond the background's own noise, and lightness edges) seeds
GrabCut, which keeps the garment and drops its shadow. frame: the garment's bounding box scaled into a 256x192 white
canvas, centred, as VITON's cloth images are; the mask gets the same transform (ACGPN's edge).
"""
import cv2
import numpy as np

HEIGHT, WIDTH = 256, 192
# Light garments: when the contrast mask covers less than LIGHT_RATIO of the outline mask, the
# garment is close to the background's colour and GrabCut decides. On VITON's 32 sample cloths
# (ground-truth masks in data/) the outline covers 1.05-1.25x of a good contrast mask (its
# shadow and soft edge), the 12 drawn fixtures 1.2-1.3x, and 1.9-100x where the contrast mask
# lost a white garment.
LIGHT_RATIO = 0.7
OUTLINE_NOISE, OUTLINE_FLOOR, OUTLINE_EDGE = 5.0, 3.0, 6.0


def cloth_mask(rgb: np.ndarray, min_threshold: float = 12.0, border: int = 8) -> np.ndarray:
    """Binary garment mask (H, W) bool of an RGB uint8 photo: the contrast mask, or for a
    garment close to its background's colour (a white shirt on white) the outline mask refined
    by GrabCut."""
    return masks(rgb, min_threshold, border)[0]


def masks(rgb: np.ndarray, min_threshold: float = 12.0, border: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(cloth_mask, the outline mask: everything that differs from the background, shadows too)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"cloth_mask needs an RGB uint8 image, got {rgb.dtype} {rgb.shape}")
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    ring = np.concatenate([lab[:border].reshape(-1, 3), lab[-border:].reshape(-1, 3),
                           lab[:, :border].reshape(-1, 3), lab[:, -border:].reshape(-1, 3)])
    background = np.median(ring, axis=0)
    distance = np.linalg.norm(lab - background, axis=2)
    contrast = contrast_mask(distance, min_threshold)
    outline = outline_mask(lab, distance, np.linalg.norm(ring - background, axis=1))
    if contrast.sum() >= LIGHT_RATIO * outline.sum():
        return contrast, outline
    return refined(rgb, contrast, outline), outline


def _kernel(shape) -> np.ndarray:
    size = max(3, round(min(shape[:2]) / 100)) | 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def _large(mask: np.ndarray) -> np.ndarray:
    """The connected regions of at least a tenth of the largest one's area (drops swatch dots,
    labels and specks), holes filled."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return fill_holes(np.isin(labels, 1 + np.flatnonzero(areas >= 0.1 * areas.max())).astype(np.uint8))


def contrast_mask(distance: np.ndarray, min_threshold: float = 12.0) -> np.ndarray:
    """The colour distance to the background above Otsu's threshold (floored), closed, opened,
    its large regions: right for garments that stand out, blind to a white shirt on white."""
    d8 = np.clip(distance, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(d8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = (distance > max(min_threshold, float(otsu))).astype(np.uint8)
    kernel = _kernel(distance.shape)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel, iterations=2)
    return _large(cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel))


def outline_mask(lab: np.ndarray, distance: np.ndarray, ring_distance: np.ndarray) -> np.ndarray:
    """Everything that differs from the background beyond its own noise (OUTLINE_NOISE x the
    border ring's median distance, at least OUTLINE_FLOOR) or lies on an edge of the lightness
    (Sobel gradient > OUTLINE_EDGE per pixel), closed and filled: a light garment's seams,
    folds and outline enclose it; shadows are included too."""
    threshold = max(OUTLINE_FLOOR, OUTLINE_NOISE * float(np.median(ring_distance)))
    mask = cv2.GaussianBlur(distance, (0, 0), 1.0) > threshold
    lightness = cv2.GaussianBlur(lab[..., 0], (0, 0), 1.0)
    gradient = np.hypot(cv2.Sobel(lightness, cv2.CV_32F, 1, 0), cv2.Sobel(lightness, cv2.CV_32F, 0, 1)) / 8
    kernel = _kernel(distance.shape)
    mask = cv2.morphologyEx((mask | (gradient > OUTLINE_EDGE)).astype(np.uint8), cv2.MORPH_CLOSE, kernel, iterations=2)
    return _large(cv2.morphologyEx(fill_holes(mask).astype(np.uint8), cv2.MORPH_OPEN, kernel, iterations=2))


def refined(rgb: np.ndarray, contrast: np.ndarray, outline: np.ndarray, size: int = 320) -> np.ndarray:
    """GrabCut at ``size`` pixels on the long side, seeded: the border ring is background, the
    eroded contrast mask garment, the outline mask probably garment, the rest probably
    background; its large regions, at the photo's size."""
    h, w = rgb.shape[:2]
    scale = min(1.0, size / max(h, w))
    shrink = (lambda m: cv2.resize(m.astype(np.uint8), None, fx=scale, fy=scale,  # noqa: E731
                                   interpolation=cv2.INTER_NEAREST)) if scale < 1 else (lambda m: m.astype(np.uint8))
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    seeds = np.where(shrink(outline) > 0, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    seeds[cv2.erode(shrink(contrast), np.ones((5, 5), np.uint8), iterations=2) > 0] = cv2.GC_FGD
    b = 4
    seeds[:b], seeds[-b:], seeds[:, :b], seeds[:, -b:] = cv2.GC_BGD, cv2.GC_BGD, cv2.GC_BGD, cv2.GC_BGD
    if not np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
        return np.zeros((h, w), bool)
    cv2.setRNGSeed(0)
    cv2.grabCut(small, seeds, None, np.zeros((1, 65)), np.zeros((1, 65)), 4, cv2.GC_INIT_WITH_MASK)
    mask = _large(np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)))
    if scale < 1:
        mask = cv2.resize(mask.astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_LINEAR) >= 128
    return mask


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Background = what a flood fill from the border reaches; everything else is garment."""
    padded = np.pad(mask, 1).astype(np.uint8)
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((flood.shape[0] + 2, flood.shape[1] + 2), np.uint8), (0, 0), 1)
    return ((padded | (1 - flood)) > 0)[1:-1, 1:-1]


def frame(rgb: np.ndarray, mask: np.ndarray, fill: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """(256x192 RGB on white, 256x192 uint8 mask 0/255): the garment centred, its bounding box
    scaled to ``fill`` of the canvas in its limiting direction."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        raise ValueError("no garment found in the photo (empty mask)")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop, crop_mask = rgb[y0:y1, x0:x1], mask[y0:y1, x0:x1].astype(np.uint8) * 255
    scale = fill * min(HEIGHT / crop.shape[0], WIDTH / crop.shape[1])
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    crop = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    crop_mask = cv2.resize(crop_mask, (w, h), interpolation=cv2.INTER_AREA) >= 128
    canvas = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
    canvas_mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    top, left = (HEIGHT - h) // 2, (WIDTH - w) // 2
    canvas[top:top + h, left:left + w][crop_mask] = crop[crop_mask]
    canvas_mask[top:top + h, left:left + w] = crop_mask * 255
    return canvas, canvas_mask


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
