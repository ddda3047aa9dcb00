"""BlazePose (full) pose estimation on CPU, with OpenPose-18 output for ACGPN.

A port of MediaPipe's single-image pose pipeline on the two vendored .tflite
models, run with LiteRT:

1. the whole image, letterboxed to 224x224 (values in [-1, 1], black border),
   goes to the SSD detector; 2254 anchors are decoded to boxes and 4 keypoints
   (mid-hip, full-body size/rotation point, mid-shoulder, upper-body point) and
   merged by weighted non-maximum suppression;
2. the best detection gives a square ROI centred on the mid-hip, twice the
   hip-to-size-point distance times 1.25, rotated so that the body is upright;
3. the ROI is cropped to 256x256 (values in [0, 1], replicated border) for the
   landmark model; its 33 landmarks are refined on the 64x64 heatmaps and
   projected back to the image.

The tflite files carry no input normalisation metadata; the value ranges and
borders above are those of MediaPipe's pose graphs. Coordinates returned by
`landmarks33` are normalised to the image width and height, as MediaPipe's.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MODEL_DIR = Path(__file__).resolve().parent / "blazepose"
DETECTOR_FILE = "pose_detection.tflite"
LANDMARK_FILE = "pose_landmark_full.tflite"

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
NUM_LANDMARKS = 33
ROI_SCALE = 1.25
NMS_IOU = 0.3
HEATMAP_KERNEL = 7
HEATMAP_MIN_CONFIDENCE = 0.5
POSE_FLAG_THRESHOLD = 0.5

# OpenPose-18 index -> MediaPipe index; the neck (1) is the shoulders' midpoint.
OPENPOSE_FROM_MEDIAPIPE = (0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)


@dataclass(frozen=True)
class Detection:
    """One detector result, normalised to the image width and height.

    `box` is (xmin, ymin, xmax, ymax); `keypoints` (4, 2) are the mid-hip, the
    full-body size/rotation point, the mid-shoulder and the upper-body point.
    """

    score: float
    box: np.ndarray
    keypoints: np.ndarray


@dataclass(frozen=True)
class Roi:
    """A rotated square crop in pixels: centre, side and rotation (radians, clockwise)."""

    center: np.ndarray
    size: float
    rotation: float


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def ssd_anchors() -> np.ndarray:
    """(2254, 2) anchor centres of the pose detector (strides 8, 16, 32 with 2, 2, 6 anchors a cell)."""
    centers = []
    for stride, per_cell in ((8, 2), (16, 2), (32, 6)):
        n = -(-DETECTOR_SIZE // stride)
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        grid = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], axis=-1).reshape(-1, 2)
        centers.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centers).astype(np.float32)


def _roi_matrix(center, width, height, rotation, out_w, out_h) -> np.ndarray:
    """2x3 affine map from image pixels to a (out_w, out_h) crop of a rotated rectangle.

    As MediaPipe's converter, the rectangle's corners go to the crop's corners (0, 0)
    and (out_w, out_h), with no half-pixel shift.
    """
    cos, sin = np.cos(rotation), np.sin(rotation)
    sx, sy = out_w / width, out_h / height
    linear = np.array([[cos * sx, sin * sx], [-sin * sy, cos * sy]])
    offset = np.array([out_w / 2, out_h / 2]) - linear @ np.asarray(center, dtype=np.float64)
    return np.concatenate([linear, offset[:, None]], axis=1)


def _iou(box, boxes):
    """Intersection over union of one (4,) box with (N, 4) boxes."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(scores, boxes, keypoints, iou_threshold=NMS_IOU):
    """MediaPipe's weighted NMS: each kept box and its keypoints are the score-weighted
    mean of the boxes overlapping the best remaining one by more than `iou_threshold`;
    the score stays the best one's. Returns a list of (score, box, keypoints), best first."""
    order = np.argsort(-scores, kind="stable")
    out = []
    while order.size:
        best = order[0]
        overlap = _iou(boxes[best], boxes[order]) > iou_threshold
        group, order = order[overlap], order[~overlap]
        w = scores[group][:, None]
        box = (boxes[group] * w).sum(0) / w.sum()
        kps = (keypoints[group] * w[:, :, None]).sum(0) / w.sum()
        out.append((float(scores[best]), box, kps))
    return out


def refine_with_heatmap(xy, heatmap, kernel=HEATMAP_KERNEL, min_confidence=HEATMAP_MIN_CONFIDENCE):
    """Replace ROI-normalised points (N, 2) by the sigmoid-weighted mean of a kernel x kernel
    window of their (H, W, >=N) heatmaps where the window's maximum reaches `min_confidence`.

    MediaPipe's convention: cells are indexed by their top-left corner (col / W, row / H)."""
    hm_h, hm_w = heatmap.shape[:2]
    half = (kernel - 1) // 2
    out = xy.copy()
    for i, (x, y) in enumerate(xy):
        col, row = int(x * hm_w), int(y * hm_h)  # truncation towards zero, as in C++
        if not (0 <= col < hm_w and 0 <= row < hm_h):
            continue
        r0, r1 = max(0, row - half), min(hm_h, row + half + 1)
        c0, c1 = max(0, col - half), min(hm_w, col + half + 1)
        conf = _sigmoid(heatmap[r0:r1, c0:c1, i].astype(np.float64))
        total = conf.sum()
        if conf.max() >= min_confidence and total > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            out[i] = ((cols * conf).sum() / hm_w / total, (rows * conf).sum() / hm_h / total)
    return out


def to_openpose18(landmarks33, width: int, height: int, visibility_threshold: float = 0.5) -> np.ndarray:
    """(18, 3) OpenPose keypoints (x, y, conf) in pixels from (33, 4) normalised landmarks.

    pixel = normalised * (W, H) - 0.5; the neck is the shoulders' midpoint with the smaller
    visibility; a point outside [0, W) x [0, H) or below the threshold is (0, 0, 0)."""
    lm = np.asarray(landmarks33, dtype=np.float64)
    out = np.zeros((18, 3), dtype=np.float32)
    for k, src in enumerate(OPENPOSE_FROM_MEDIAPIPE):
        if src is None:
            xy, vis = (lm[11, :2] + lm[12, :2]) / 2, min(lm[11, 3], lm[12, 3])
        else:
            xy, vis = lm[src, :2], lm[src, 3]
        px, py = xy[0] * width - 0.5, xy[1] * height - 0.5
        if vis >= visibility_threshold and 0 <= px < width and 0 <= py < height:
            out[k] = (px, py, vis)
    return out


def openpose_json(keypoints18) -> dict:
    """VITON's OpenPose JSON for one person (key `pose_keypoints`, 54 floats)."""
    flat = [float(v) for v in np.asarray(keypoints18, dtype=np.float64).reshape(54)]
    person = {"pose_keypoints": flat, "face_keypoints": [], "hand_left_keypoints": [], "hand_right_keypoints": []}
    return {"version": 1.0, "people": [person]}


def _load_interpreter(path: Path, num_threads: int, expect_input, expect_outputs):
    """A LiteRT interpreter for `path`, checked against the expected tensor shapes."""
    from ai_edge_litert.interpreter import Interpreter

    hint = (f"pass BlazePose(model_dir=...) a folder holding {DETECTOR_FILE} and {LANDMARK_FILE} "
            "from the mediapipe 0.10.21 wheel")
    if not path.is_file():
        raise FileNotFoundError(f"BlazePose model {path.name} is missing from {path.parent}; {hint}")
    try:
        interp = Interpreter(model_path=str(path), num_threads=num_threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"{path} is not a valid tflite model ({exc}); {hint}") from exc
    shape_in = tuple(interp.get_input_details()[0]["shape"])
    shapes_out = sorted(tuple(d["shape"]) for d in interp.get_output_details())
    if shape_in != expect_input or shapes_out != sorted(expect_outputs):
        raise ValueError(f"{path} has input {shape_in} and outputs {shapes_out}, not those of "
                         f"BlazePose's {path.name}; {hint}")
    return interp


class BlazePose:
    """BlazePose (full) on CPU: `landmarks33`, `openpose18` and `detections` for one RGB uint8 image.

    One instance is safe to share between threads (calls are serialised).
    """

    def __init__(self, model_dir: str | os.PathLike | None = None, num_threads: int = 2,
                 min_detection_score: float = 0.5, roi_scale: float = ROI_SCALE):
        model_dir = Path(model_dir) if model_dir is not None else MODEL_DIR
        s, n = LANDMARK_SIZE, NUM_LANDMARKS + 6
        self._detector = _load_interpreter(model_dir / DETECTOR_FILE, num_threads, (1, DETECTOR_SIZE, DETECTOR_SIZE, 3),
                                           [(1, 2254, 12), (1, 2254, 1)])
        self._landmarker = _load_interpreter(model_dir / LANDMARK_FILE, num_threads, (1, s, s, 3),
                                             [(1, n * 5), (1, 1), (1, s, s, 1), (1, 64, 64, n), (1, n * 3)])
        self._outputs = {k: {tuple(d["shape"][1:]): d["index"] for d in interp.get_output_details()}
                         for k, interp in (("det", self._detector), ("lm", self._landmarker))}
        self._anchors = ssd_anchors()
        self.min_detection_score = min_detection_score
        self.roi_scale = roi_scale
        self._lock = threading.Lock()

    @staticmethod
    def _check(image) -> np.ndarray:
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}")
        return image

    def _run(self, interp, key, tensor):
        interp.set_tensor(interp.get_input_details()[0]["index"], tensor[None].astype(np.float32))
        interp.invoke()
        return {shape: interp.get_tensor(idx)[0] for shape, idx in self._outputs[key].items()}

    def detections(self, image) -> list[Detection]:
        """All people found after NMS (score >= min_detection_score), best first."""
        image = self._check(image)
        h, w = image.shape[:2]
        side = max(h, w)  # letterbox: the image centred in a black square
        matrix = _roi_matrix((w / 2, h / 2), side, side, 0.0, DETECTOR_SIZE, DETECTOR_SIZE)
        crop = cv2.warpAffine(image, matrix, (DETECTOR_SIZE, DETECTOR_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        with self._lock:
            out = self._run(self._detector, "det", crop.astype(np.float32) * (2 / 255) - 1)
        raw, scores = out[(2254, 12)], _sigmoid(np.clip(out[(2254, 1)][:, 0], -100, 100))
        keep = scores >= self.min_detection_score
        raw, scores, anchors = raw[keep] / DETECTOR_SIZE, scores[keep], self._anchors[keep]
        center, size = raw[:, :2] + anchors, raw[:, 2:4]
        boxes = np.concatenate([center - size / 2, center + size / 2], axis=1)
        kps = raw[:, 4:].reshape(-1, 4, 2) + anchors[:, None]
        # Undo the letterbox: letterboxed [0, 1] -> image [0, 1].
        pad = (np.array([side - w, side - h]) / 2) / side
        scale = np.array([w, h]) / side
        result = []
        for score, box, kp in weighted_nms(scores, boxes, kps):
            box = ((box.reshape(2, 2) - pad) / scale).reshape(4)
            result.append(Detection(score, box.astype(np.float32), ((kp - pad) / scale).astype(np.float32)))
        return result

    def roi(self, detection: Detection, width: int, height: int) -> Roi:
        """The landmark model's square crop for a detection, upright body, as MediaPipe's pose graph."""
        hip, top = detection.keypoints[:2].astype(np.float64) * (width, height)
        dx, dy = top - hip
        rotation = np.pi / 2 - np.arctan2(-dy, dx)
        rotation = rotation - 2 * np.pi * np.floor((rotation + np.pi) / (2 * np.pi))
        return Roi(center=hip, size=float(2 * np.hypot(dx, dy) * self.roi_scale), rotation=float(rotation))

    def landmarks33(self, image) -> np.ndarray | None:
        """(33, 4) float32 [x, y normalised to width/height, z, visibility] of the best person, or None."""
        image = self._check(image)
        dets = self.detections(image)
        if not dets:
            return None
        h, w = image.shape[:2]
        roi = self.roi(dets[0], w, h)
        if not roi.size > 0:
            return None
        s = LANDMARK_SIZE
        matrix = _roi_matrix(roi.center, roi.size, roi.size, roi.rotation, s, s)
        crop = cv2.warpAffine(image, matrix, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        with self._lock:
            out = self._run(self._landmarker, "lm", crop.astype(np.float32) / 255)
        if out[(1,)][0] < POSE_FLAG_THRESHOLD:
            return None
        raw = out[((NUM_LANDMARKS + 6) * 5,)].reshape(-1, 5)[:NUM_LANDMARKS].astype(np.float64)
        xy = refine_with_heatmap(raw[:, :2] / s, out[(64, 64, NUM_LANDMARKS + 6)])
        # ROI-normalised -> image pixels -> image-normalised.
        cos, sin = np.cos(roi.rotation), np.sin(roi.rotation)
        local = (xy - 0.5) * roi.size
        px = roi.center + local @ np.array([[cos, sin], [-sin, cos]])
        result = np.empty((NUM_LANDMARKS, 4), dtype=np.float32)
        result[:, :2] = px / (w, h)
        result[:, 2] = raw[:, 2] / s * roi.size / w
        result[:, 3] = _sigmoid(raw[:, 3])
        return result

    def openpose18(self, image, visibility_threshold: float = 0.5) -> np.ndarray | None:
        """(18, 3) float32 OpenPose keypoints (x, y, conf) in pixels, or None when nobody is found."""
        image = self._check(image)
        lm = self.landmarks33(image)
        if lm is None:
            return None
        return to_openpose18(lm, image.shape[1], image.shape[0], visibility_threshold)

    def __call__(self, image, visibility_threshold: float = 0.5) -> np.ndarray | None:
        return self.openpose18(image, visibility_threshold)

    def estimate_batch(self, images, visibility_threshold: float = 0.5) -> list[np.ndarray | None]:
        """`openpose18` for each image of a list."""
        return [self.openpose18(im, visibility_threshold) for im in images]
