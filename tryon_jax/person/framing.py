"""Framing: the scale and shift (no rotation) that turns a person photo into a 256x192 picture
framed like VITON's (tops) or like Dress Code's full-body persons (bottoms, dresses;
``full_body_matrix``), and its inverse, which puts a try-on back into the photo.

VITON's own persons are not all framed alike. BlazePose on the 14221 VITON train photos puts
the neck (shoulders' midpoint) at x 72 to 120 and y 70 to 105 and finds torsos (neck to
mid-hip) of 97 to 146 pixels (2.5th to 97.5th percentiles), and nearly all of them (0.5th to
99.5th: x 64 to 127, y 62 to 114, torso 87 to 155) within the wider KEEP ranges
(``python -m evaluation.preparation_eval --split=train --fit`` measures them). So the framing
fits the whole photo into 256x192 (the identity for a VITON-sized photo) and keeps that
when the person lies within the KEEP ranges and the photo fills the frame's bottom: such a
photo is already framed like the photos ACGPN learned from, and the parser, too, reads those
persons best as they are (on the VITON test persons the framing moved into the narrower
ranges it scored mIoU 0.889 moved and 0.898 as they were). Any other person is moved only as
far as needed into the narrower ranges, zoomed in and moved down where the photo's bottom edge
would show (VITON's persons go on below the picture). 98% of the 2032 VITON test photos stay
exactly as they are (no resampling); the point targets used before (neck at (96, 83.5),
torso 120) changed their scale by 0.084 and shifted them by 11.8 pixels on average.
"""
import cv2
import numpy as np

HEIGHT, WIDTH = 256, 192
NECK_X_RANGE, NECK_X_KEEP = (72.0, 120.0), (64.0, 127.0)
NECK_Y_RANGE, NECK_Y_KEEP = (70.0, 105.0), (62.0, 114.0)
TORSO_RANGE, TORSO_KEEP = (97.0, 146.0), (87.0, 155.0)
WHITE = (255, 255, 255)
# Full-body framing, like Dress Code's persons (8951 lower-body keypoint files, in the 192x256
# frame): neck (shoulders' midpoint) at x 68 to 124 and y 19 to 35, neck to mid-ankle 166 to
# 206 pixels (2.5th to 97.5th percentiles), the KEEP ranges the 0.5th to 99.5th. Dress Code cuts
# its persons at the chin (the nose lies above the picture in 99.4% of them), so this framing
# does too; the try-on goes back into the whole photo (paste_back).
FULL_NECK_X_RANGE, FULL_NECK_X_KEEP = (68.0, 124.0), (56.0, 137.0)
FULL_NECK_Y_RANGE, FULL_NECK_Y_KEEP = (19.0, 35.0), (15.0, 37.0)
FULL_LENGTH_RANGE, FULL_LENGTH_KEEP = (166.0, 206.0), (160.0, 210.0)
FRAME_SIZES = ((HEIGHT, WIDTH), (2 * HEIGHT, 2 * WIDTH))  # 256x192 and 512x384


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 2x3 map ``a`` after ``b``."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


def invert(matrix: np.ndarray) -> np.ndarray:
    return np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]


def scale_matrix(sx: float, sy: float) -> np.ndarray:
    """Pixel centres of a picture -> those of the picture resized by (sx, sy):
    x' + 0.5 = sx (x + 0.5)."""
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5]])


def fit_matrix(width: int, height: int) -> np.ndarray:
    """Pixel centres of a width x height photo -> the 192x256 frame, the whole photo scaled to
    fit and centred (the identity for a 192x256 photo)."""
    f = min(HEIGHT / height, WIDTH / width)
    return scale_matrix(f, f) + [[0, 0, (WIDTH - f * width) / 2], [0, 0, (HEIGHT - f * height) / 2]]


def framing_matrix(neck: np.ndarray, hip: np.ndarray, width: int, height: int) -> np.ndarray:
    """2x3 map (photo pixel centres -> 192x256 pixel centres) from the neck and the mid-hip in
    photo pixels: the fitted photo as it is when the person lies within the *_KEEP ranges and
    the photo fills the frame's bottom; else scaled about the neck into TORSO_RANGE and shifted
    into NECK_X_RANGE x NECK_Y_RANGE, zoomed in and moved down where the photo's bottom edge
    would otherwise show. Exactly the identity when a 192x256 photo needs no move of a pixel or
    more; a shift without scaling is by whole pixels."""
    fit = fit_matrix(width, height)
    neck_f = fit @ np.append(neck, 1.0)
    torso_f = fit[0, 0] * max(float(np.linalg.norm(np.asarray(hip) - neck)), 1e-6)
    fills_bottom = fit[1, 1] * (height - 0.5) + fit[1, 2] >= HEIGHT - 0.5 - 1e-9
    if fills_bottom and all(lo <= v <= hi for v, (lo, hi) in
                            zip((neck_f[0], neck_f[1], torso_f), (NECK_X_KEEP, NECK_Y_KEEP, TORSO_KEEP))):
        return fit  # the identity for a 192x256 photo
    s = float(np.clip(torso_f, *TORSO_RANGE)) / torso_f
    target = np.array([np.clip(neck_f[0], *NECK_X_RANGE), np.clip(neck_f[1], *NECK_Y_RANGE)])
    # VITON's persons go on below the picture's bottom edge: where the photo's bottom edge
    # would show, zoom in about the neck (as far as TORSO_RANGE allows), then move down
    bottom_f = fit[1, 1] * (height - 0.5) + fit[1, 2] - neck_f[1]  # below the neck, fitted
    if target[1] + s * bottom_f < HEIGHT - 0.5:
        s = max(s, min((HEIGHT - 0.5 - target[1]) / bottom_f, TORSO_RANGE[1] / torso_f))
        target[1] = max(target[1], HEIGHT - 0.5 - s * bottom_f)
    matrix = _compose(np.array([[s, 0, target[0] - s * neck_f[0]], [0, s, target[1] - s * neck_f[1]]]), fit)
    if (width, height) == (WIDTH, HEIGHT) and max_displacement(matrix) < 1.0:
        return np.eye(2, 3)
    if np.array_equal(matrix[:, :2], np.eye(2)):  # a shift alone: by whole pixels, so nothing is resampled
        matrix[:, 2] = np.round(matrix[:, 2])
    return matrix


def full_body_matrix(neck: np.ndarray, ankle: np.ndarray, width: int, height: int) -> np.ndarray:
    """2x3 map (photo pixel centres -> 192x256 pixel centres) for a full-body person from the neck
    and the mid-ankle in photo pixels: the fitted photo as it is when the person lies within the
    FULL_*_KEEP ranges (a Dress Code photo), else scaled about the neck into FULL_LENGTH_RANGE
    and shifted into FULL_NECK_X_RANGE x FULL_NECK_Y_RANGE."""
    fit = fit_matrix(width, height)
    neck_f = fit @ np.append(neck, 1.0)
    length_f = fit[0, 0] * max(float(np.linalg.norm(np.asarray(ankle) - neck)), 1e-6)
    if all(lo <= v <= hi for v, (lo, hi) in zip((neck_f[0], neck_f[1], length_f),
                                                (FULL_NECK_X_KEEP, FULL_NECK_Y_KEEP, FULL_LENGTH_KEEP))):
        return fit
    s = float(np.clip(length_f, *FULL_LENGTH_RANGE)) / length_f
    target = np.array([np.clip(neck_f[0], *FULL_NECK_X_RANGE), np.clip(neck_f[1], *FULL_NECK_Y_RANGE)])
    return _compose(np.array([[s, 0, target[0] - s * neck_f[0]], [0, s, target[1] - s * neck_f[1]]]), fit)


def max_displacement(matrix: np.ndarray) -> float:
    """How far (pixels) the map moves any pixel of the 192x256 frame from where it was."""
    corners = np.array([[0, 0, 1], [WIDTH - 1, 0, 1], [0, HEIGHT - 1, 1], [WIDTH - 1, HEIGHT - 1, 1]], float)
    return float(np.abs(corners @ matrix.T - corners[:, :2]).max())


def frame(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int] = (HEIGHT, WIDTH)) -> np.ndarray:
    """The framed person at ``size`` (height, width) of the 3:4 frame (256x192 or 512x384;
    ``matrix`` maps to 192x256 pixels). The identity copies the photo; large photos are first
    shrunk with area averaging (no aliasing), then the rest of the map is bilinear; outside the
    photo is white."""
    if size != (HEIGHT, WIDTH):
        if size[0] * WIDTH != size[1] * HEIGHT:
            raise ValueError(f"frame size {size[0]}x{size[1]} is not 4:3")
        matrix = _compose(scale_matrix(size[1] / WIDTH, size[0] / HEIGHT), matrix)
    if image.shape[:2] == size and np.array_equal(matrix, np.eye(2, 3)):
        return image.copy()
    s = matrix[0, 0]
    if s < 0.8:
        h, w = image.shape[:2]
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        matrix = _compose(matrix, invert(scale_matrix(nw / w, nh / h)))
    return cv2.warpAffine(image, matrix, size[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=WHITE)


def paste_back(photo: np.ndarray, result: np.ndarray, changed: np.ndarray, matrix: np.ndarray,
               feather: float = 2.0) -> np.ndarray:
    """The try-on composited back into the person's own photo, at the photo's resolution.

    ``result`` (h, w, 3) uint8 and ``changed`` (h, w) in {0, 1} are the model's output and the
    region it replaced, at any resolution of the 3:4 frame; ``matrix`` the photo's framing. The
    region, grown by ``feather`` framed pixels and blurred by as much, is the blend weight: the
    model's pixels inside it, a soft edge around it, and every other pixel of the photo as it
    was (bit for bit)."""
    h, w = photo.shape[:2]
    rh, rw = result.shape[:2]
    sx, sy = rw / WIDTH, rh / HEIGHT
    to_result = _compose(scale_matrix(sx, sy), matrix)
    back = invert(to_result)
    interpolation = cv2.INTER_CUBIC if to_result[0, 0] < 1 else cv2.INTER_LINEAR  # enlarging: cubic
    picture = cv2.warpAffine(result, back, (w, h), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
    grown = cv2.dilate(np.asarray(changed, np.uint8).reshape(rh, rw), np.ones((3, 3), np.uint8),
                       iterations=max(1, round(feather * sx)))
    alpha = cv2.warpAffine(grown.astype(np.float32), back, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    blur = feather * sx / to_result[0, 0]  # the feather in photo pixels
    if blur >= 0.5:
        radius = int(np.ceil(2 * blur))
        alpha = cv2.GaussianBlur(alpha, (2 * radius + 1, 2 * radius + 1), blur)
    alpha = np.clip(alpha, 0, 1)[..., None]
    blended = np.round(photo * (1 - alpha) + picture.astype(np.float32) * alpha)
    return np.where(alpha > 0, blended, photo).astype(np.uint8)
