"""Any person photo -> ACGPN's person inputs: the image framed like VITON (256x192), the
14-label map and the OpenPose-18 pose. The one implementation used by prepare_person,
try-on, the data builders and the service.

Framing: a scale and shift (no rotation) that puts the neck (shoulders' midpoint) and the
mid-hip where they sit in VITON photos. Measured on MediaPipe's landmarks of the 32 CP-VTON
test persons (../shared/golden/pose): neck at (97.0, 83.5), torso (neck to mid-hip) 120.6
px; VITON's own OpenPose annotations of the 2032 test persons give (95.7, 83.8) and 118.8 px.
"""
import dataclasses
import os

import cv2
import numpy as np

from tryon_jax.person import photo as photo_lib
from tryon_jax.person.parser import HEIGHT, WIDTH, HumanParser
from tryon_jax.person.pose import BlazePose, to_openpose18

NECK_XY = np.array([96.0, 83.5])
TORSO_PX = 120.0
# MediaPipe landmarks that must lie inside the photo: nose, shoulders, hips.
REQUIRED = {0: "nose", 11: "left shoulder", 12: "right shoulder", 23: "left hip", 24: "right hip"}
WHITE = (255, 255, 255)


class PersonError(ValueError):
    """A photo refused for what it shows (no person, several, too small, cut off)."""


@dataclasses.dataclass
class Person:
    image: np.ndarray  # (256, 192, 3) uint8, framed like VITON
    label: np.ndarray  # (256, 192) uint8, ACGPN ids 0..13
    keypoints: np.ndarray  # (18, 3) float32 OpenPose (x, y, conf) in the 192x256 frame
    framing: np.ndarray  # 2x3 affine: photo pixels -> framed pixels


def framing_matrix(landmarks33: np.ndarray, width: int, height: int) -> np.ndarray:
    """2x3 matrix (photo pixel centres -> 192x256 pixel centres) from normalised landmarks."""
    xy = landmarks33[:, :2] * (width, height) - 0.5
    neck, hip = (xy[11] + xy[12]) / 2, (xy[23] + xy[24]) / 2
    s = TORSO_PX / max(float(np.linalg.norm(hip - neck)), 1e-6)
    return np.array([[s, 0, NECK_XY[0] - s * neck[0]], [0, s, NECK_XY[1] - s * neck[1]]])


def frame(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The framed 256x192 person. Large photos are first shrunk with area averaging (no
    aliasing), then the rest of the transform is bilinear; outside the photo is white."""
    s = matrix[0, 0]
    if s < 0.8:
        h, w = image.shape[:2]
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        # pixel centres: x_small = (x + 0.5) * nw / w - 0.5
        fx, fy = nw / w, nh / h
        pre = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1]])
        matrix = np.concatenate([matrix, [[0, 0, 1]]]) @ np.linalg.inv(pre)
        matrix = matrix[:2]
    return cv2.warpAffine(image, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=WHITE)


class PersonPreprocessor:
    """``prepare(photo)`` -> Person, or PersonError / photo.PhotoError naming the problem."""

    def __init__(self, parser_weights=None, pose_model_dir=None, min_torso_px: float = 48.0,
                 max_pixels: int = photo_lib.MAX_PIXELS, batch_size: int = 16):
        self.pose = BlazePose(pose_model_dir)
        self.parser = HumanParser(parser_weights, batch_size)
        self.min_torso_px = min_torso_px
        self.max_pixels = max_pixels

    def locate(self, image: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(framing matrix, keypoints in the framed image) of the one person in ``image``."""
        h, w = image.shape[:2]
        people = self.pose.detections(image)
        if not people:
            raise PersonError(f"{name}: no person found")
        if len(people) > 1:
            raise PersonError(f"{name}: {len(people)} people found; use a photo of one person")
        lm = self.pose.landmarks33(image)
        if lm is None:
            raise PersonError(f"{name}: no person found (the pose model rejected the detection)")
        xy = lm[:, :2] * (w, h) - 0.5
        outside = [part for i, part in REQUIRED.items() if not (0 <= xy[i, 0] < w and 0 <= xy[i, 1] < h)]
        if outside:
            raise PersonError(f"{name}: person cut off ({', '.join(outside)} outside the photo); ACGPN needs the "
                              "person from the head to the hips")
        torso = float(np.linalg.norm((xy[23] + xy[24]) / 2 - (xy[11] + xy[12]) / 2))
        if torso < self.min_torso_px:
            raise PersonError(f"{name}: person too small (torso of {torso:.0f} pixels, at least "
                              f"{self.min_torso_px:.0f} needed)")
        matrix = framing_matrix(lm, w, h)
        moved = np.concatenate([xy, np.ones((len(xy), 1))], 1) @ matrix.T
        framed = np.concatenate([(moved + 0.5) / (WIDTH, HEIGHT), lm[:, 2:]], 1)
        return matrix, to_openpose18(framed, WIDTH, HEIGHT)

    def prepare_batch(self, sources, names=None) -> list:
        """One Person or the exception refusing it, per source (path, bytes or PIL image)."""
        names = names or [os.fspath(s) if isinstance(s, (str, os.PathLike)) else f"photo {i}"
                          for i, s in enumerate(sources)]
        located = []
        for source, name in zip(sources, names):
            try:
                image = photo_lib.load_photo(source, name, self.max_pixels)
                matrix, keypoints = self.locate(image, name)
                located.append((frame(image, matrix), keypoints, matrix))
            except (photo_lib.PhotoError, PersonError) as e:
                located.append(e)
        ok = [x for x in located if not isinstance(x, Exception)]
        labels, _ = self.parser.parse(np.stack([x[0] for x in ok])) if ok else (None, None)
        out, j = [], 0
        for x in located:
            if isinstance(x, Exception):
                out.append(x)
            else:
                out.append(Person(x[0], labels[j], x[1].astype(np.float32), x[2]))
                j += 1
        return out

    def prepare(self, source, name: str | None = None) -> Person:
        result = self.prepare_batch([source], [name] if name else None)[0]
        if isinstance(result, Exception):
            raise result
        return result
