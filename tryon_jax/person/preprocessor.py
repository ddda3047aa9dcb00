"""Any person photo -> ACGPN's person inputs: the image framed like VITON (256x192; for
bottoms and dresses the whole person, framed like Dress Code), the 14-label map and the
OpenPose-18 pose. The one implementation used by prepare_person,
try-on, the data builders and the service.

What ACGPN can use, and so what is accepted: one person whose shoulders are in the photo and
who is shown at least down to the waist (75% of the way from the neck to the hips; VITON's
test photos show 90% or more). Hips below the bottom edge are taken from the pose model, with
the torso held to 1.33-1.98 shoulder widths (VITON train's 2.5th-97.5th percentiles) since they are
then a guess. A photo cut at the chin or nose is accepted: the framed picture is white above
the photo's edge, the parser finds no face or hair there, and the face keypoints (nose, eyes,
ears) are left out of the pose, as OpenPose leaves out what it cannot see.

The pose is the parser's own heatmap keypoints where it finds them and BlazePose's elsewhere
(fuse_keypoints). Where BlazePose's landmark model rejects a person its detector found, the
parser's keypoints on the whole photo locate it instead (locate_by_parser).
"""
import copy
import dataclasses
import os

import numpy as np

from tryon_jax.models import garment as garment_lib
from tryon_jax.person import framing as framing_lib
from tryon_jax.person import photo as photo_lib
from tryon_jax.person.parser import HEIGHT, WIDTH, HumanParser
from tryon_jax.person.pose import OPENPOSE_FROM_MEDIAPIPE, BlazePose, to_openpose18

SIDES = ("left", "right")
MIN_TORSO_SHOWN = 0.75
# The parser's heatmap keypoints where it finds them, BlazePose's elsewhere: on 256 VITON test
# persons (framed by the same code) PCK@0.1 was 0.971 fused, 0.964 heatmaps alone and 0.941
# BlazePose alone; with clutter, 0.6x off-centre or a colour cast 0.960-0.982 fused. The
# heatmaps never find knees (VITON's annotations have a few): those come from BlazePose.
HEATMAP_MIN_PEAK = 0.3
TORSO_PER_SHOULDER = (1.33, 1.98)


class PersonError(ValueError):
    """A photo refused for what it shows (no person, several, too small, cut off)."""


class PoseRejected(PersonError):
    """BlazePose's detector found one person but its landmark model rejected the pose."""


@dataclasses.dataclass
class Person:
    image: np.ndarray  # (256, 192, 3) uint8, framed like VITON
    label: np.ndarray  # (256, 192) uint8, ACGPN ids 0..13
    keypoints: np.ndarray  # (18, 3) float32 OpenPose (x, y, conf) in the 192x256 frame
    framing: np.ndarray  # 2x3 affine: photo pixels -> framed pixels
    photo_size: tuple = (HEIGHT, WIDTH)  # (height, width) of the photo the framing maps from


def _inside(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    return (xy[..., 0] >= -0.5) & (xy[..., 0] < width - 0.5) & (xy[..., 1] >= -0.5) & (xy[..., 1] < height - 0.5)


def fuse_keypoints(blazepose: np.ndarray, heatmaps: np.ndarray, min_peak: float = HEATMAP_MIN_PEAK) -> np.ndarray:
    """Per keypoint, the parser's heatmap peak where it found one (peak >= ``min_peak``), else
    BlazePose's: both (18, 3) in the framed picture."""
    return np.where(heatmaps[:, 2:] >= min_peak, heatmaps, blazepose)


def shown(keypoints: np.ndarray, matrix: np.ndarray, photo_size) -> np.ndarray:
    """The keypoints with those outside the photo (a head cut off, hips below the edge) left
    out: the model is not shown what the photo does not show. (prepare_batch also leaves out
    the points whose BlazePose landmark lies outside: the parser may find a face in the white
    above a photo cut at the chin.)"""
    photo_xy = np.c_[keypoints[:, :2], np.ones(len(keypoints))] @ framing_lib.invert(matrix).T
    return np.where(_inside(photo_xy, photo_size[1], photo_size[0])[:, None], keypoints, 0)


def torso(shoulders: np.ndarray, hips: np.ndarray, width: int, height: int, name: str) -> tuple:
    """(neck, mid-hip) in photo pixels from the (left, right) shoulders and hips, or
    PersonError when ACGPN cannot use the photo."""
    missing = [f"{side} shoulder" for side, inside in zip(SIDES, _inside(shoulders, width, height)) if not inside]
    if missing:
        raise PersonError(f"{name}: person cut off ({', '.join(missing)} outside the photo); ACGPN needs the "
                          "shoulders, the torso and the arms in the photo")
    hips_inside = _inside(hips, width, height)
    aside = [f"{side} hip" for side, inside, y in zip(SIDES, hips_inside, hips[:, 1])
             if not inside and not y >= height - 0.5]
    if aside:
        raise PersonError(f"{name}: person cut off at the side ({', '.join(aside)} outside the photo)")
    neck, hip = shoulders.mean(0), hips.mean(0)
    if not hips_inside.all():  # below the bottom edge: a guess, held to VITON's proportions
        length = max(float(np.linalg.norm(hip - neck)), 1e-6)
        span = float(np.linalg.norm(shoulders[0] - shoulders[1]))
        hip = neck + (hip - neck) * np.clip(length, *(r * span for r in TORSO_PER_SHOULDER)) / length
    fraction = (height - 0.5 - neck[1]) / max(hip[1] - neck[1], 1e-6)
    if fraction < MIN_TORSO_SHOWN:
        raise PersonError(f"{name}: person cut off above the waist (the photo shows {min(fraction, 1):.0%} of the "
                          f"torso below the shoulders; ACGPN needs at least {MIN_TORSO_SHOWN:.0%}, down to the waist)")
    return neck, hip


def legs(knees: np.ndarray, ankles: np.ndarray, width: int, height: int, name: str) -> np.ndarray:
    """The mid-ankle in photo pixels from the (left, right) knees and ankles, or PersonError:
    bottoms and dresses need the legs down to the feet."""
    for joint, points in (("knee", knees), ("ankle", ankles)):
        missing = [f"{side} {joint}" for side, inside in zip(SIDES, _inside(points, width, height)) if not inside]
        if missing:
            where = "above the knees" if joint == "knee" else "above the feet"
            raise PersonError(f"{name}: person cut off {where} ({', '.join(missing)} outside the photo); a "
                              "lower-body or dress try-on needs the whole person from the shoulders to the feet "
                              "(knees and ankles in the photo)")
    return ankles.mean(0)


class PersonPreprocessor:
    """``prepare(photo)`` -> Person, or PersonError / photo.PhotoError naming the problem.

    ``garment``: the region the person is prepared for (tryon_jax.models.garment): 'upper'
    frames like VITON (shoulders to below the hips), 'lower' and 'dresses' frame the whole
    person like Dress Code and need the knees and ankles in the photo."""

    def __init__(self, parser_weights=None, pose_model_dir=None, min_torso_px: float = 48.0,
                 max_pixels: int = photo_lib.MAX_PIXELS, batch_size: int = 16, garment: str = "upper"):
        garment_lib.region(garment)  # a clear error for an unknown name
        self.pose = BlazePose(pose_model_dir)
        self.parser = HumanParser(parser_weights, batch_size)
        self.min_torso_px = min_torso_px
        self.max_pixels = max_pixels
        self.full_body = garment != "upper"

    def for_garment(self, garment: str) -> "PersonPreprocessor":
        """The same models, preparing persons for another garment region."""
        garment_lib.region(garment)
        other = copy.copy(self)
        other.full_body = garment != "upper"
        return other

    def locate(self, image: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(framing matrix, BlazePose's keypoints in the framed image, which of the 18 lie in the
        photo by BlazePose's landmarks) of the one person in ``image``."""
        h, w = image.shape[:2]
        people = self.pose.detections(image)
        if not people:
            raise PersonError(f"{name}: no person found")
        if len(people) > 1:
            raise PersonError(f"{name}: {len(people)} people found; use a photo of one person")
        lm = self.pose.landmarks33(image)
        if lm is None:
            raise PoseRejected(f"{name}: no person found (the pose model rejected the detection)")
        xy = lm[:, :2] * (w, h) - 0.5
        matrix = self._framing(xy[[11, 12]], xy[[23, 24]], w, h, name, xy[[25, 26]], xy[[27, 28]])
        moved = np.concatenate([xy, np.ones((len(xy), 1))], 1) @ matrix.T
        keypoints = to_openpose18(np.concatenate([(moved + 0.5) / (WIDTH, HEIGHT), lm[:, 2:]], 1), WIDTH, HEIGHT)
        seen = _inside(xy, w, h)
        in_photo = np.array([seen[11] and seen[12] if src is None else seen[src] for src in OPENPOSE_FROM_MEDIAPIPE])
        return matrix, keypoints, in_photo

    def _framing(self, shoulders, hips, width: int, height: int, name: str, knees=None, ankles=None) -> np.ndarray:
        neck, hip = torso(shoulders, hips, width, height, name)
        ankle = legs(knees, ankles, width, height, name) if self.full_body else None
        length = float(np.linalg.norm(hip - neck))
        if length < self.min_torso_px:
            raise PersonError(f"{name}: person too small (torso of {length:.0f} pixels, at least "
                              f"{self.min_torso_px:.0f} needed)")
        if self.full_body:
            return framing_lib.full_body_matrix(neck, ankle, width, height)
        return framing_lib.framing_matrix(neck, hip, width, height)

    def locate_by_parser(self, image: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """locate() from the parser's heatmap keypoints on the photo fitted into the frame, for a
        person BlazePose's landmark model rejects (measured: 1 of the 2032 VITON test persons,
        arms crossed and head tilted). Needs both shoulders and a hip."""
        h, w = image.shape[:2]
        fit = framing_lib.fit_matrix(w, h)
        _, heat = self.parser.parse(framing_lib.frame(image, fit)[None])
        kp = heat[0]
        if self.full_body:  # the parser's heatmaps never find knees (VITON's persons end at the hips)
            raise PoseRejected(f"{name}: no person found (the pose model rejected the detection, and a full-body "
                               "person needs its knees and ankles)")
        if not (kp[[2, 5], 2] > 0).all() or not (kp[[8, 11], 2] > 0).any():
            raise PoseRejected(f"{name}: no person found (neither pose model finds the shoulders and hips)")
        photo = np.c_[kp[:, :2], np.ones(18)] @ framing_lib.invert(fit).T
        hips = photo[[11, 8]] if (kp[[8, 11], 2] > 0).all() else photo[[11, 11] if kp[11, 2] > 0 else [8, 8]]
        matrix = self._framing(photo[[5, 2]], hips, w, h, name)
        moved = np.c_[photo, np.ones(18)] @ matrix.T
        return matrix, np.where(kp[:, 2:] > 0, np.c_[moved, kp[:, 2]], 0), np.ones(18, bool)

    def prepare_batch(self, sources, names=None) -> list:
        """One Person or the exception refusing it, per source (path, bytes or PIL image)."""
        names = names or [os.fspath(s) if isinstance(s, (str, os.PathLike)) else f"photo {i}"
                          for i, s in enumerate(sources)]
        located = []
        for source, name in zip(sources, names):
            try:
                image = photo_lib.load_photo(source, name, self.max_pixels)
                try:
                    matrix, keypoints, in_photo = self.locate(image, name)
                except PoseRejected:
                    matrix, keypoints, in_photo = self.locate_by_parser(image, name)
                located.append((framing_lib.frame(image, matrix), keypoints, matrix, image.shape[:2], in_photo))
            except (photo_lib.PhotoError, PersonError) as e:
                located.append(e)
        ok = [x for x in located if not isinstance(x, Exception)]
        labels, heatmap_keypoints = self.parser.parse(np.stack([x[0] for x in ok])) if ok else (None, None)
        out, j = [], 0
        for x in located:
            if isinstance(x, Exception):
                out.append(x)
            else:
                keypoints = np.where(x[4][:, None], shown(fuse_keypoints(x[1], heatmap_keypoints[j]), x[2], x[3]), 0)
                out.append(Person(x[0], labels[j], keypoints.astype(np.float32), x[2], tuple(x[3])))
                j += 1
        return out

    def prepare(self, source, name: str | None = None) -> Person:
        result = self.prepare_batch([source], [name] if name else None)[0]
        if isinstance(result, Exception):
            raise result
        return result
