"""Cloth masks for product photos (a garment on a plain light background) and VITON framing.

mask: background colour from the image border (median), per-pixel colour distance to it,
a threshold (Otsu on the distance, floored), closing then opening, the large connected
components, holes filled. frame: the garment's bounding box scaled into a 256x192 white
canvas, centred, as VITON's cloth images are; the mask gets the same transform (ACGPN's edge).
"""
import cv2
import numpy as np

HEIGHT, WIDTH = 256, 192


def cloth_mask(rgb: np.ndarray, min_threshold: float = 12.0, border: int = 8) -> np.ndarray:
    """Binary garment mask (H, W) bool of an RGB uint8 photo."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"cloth_mask needs an RGB uint8 image, got {rgb.dtype} {rgb.shape}")
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    edge = np.concatenate([lab[:border].reshape(-1, 3), lab[-border:].reshape(-1, 3),
                           lab[:, :border].reshape(-1, 3), lab[:, -border:].reshape(-1, 3)])
    distance = np.linalg.norm(lab - np.median(edge, axis=0), axis=2)
    d8 = np.clip(distance, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(d8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = (distance > max(min_threshold, float(otsu))).astype(np.uint8)
    size = max(3, round(min(rgb.shape[:2]) / 100)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel, iterations=2)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = 1 + np.flatnonzero(areas >= 0.1 * areas.max())
    mask = np.isin(labels, keep).astype(np.uint8)
    return fill_holes(mask)


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
