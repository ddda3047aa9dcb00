"""Augmentations for the human parser, on device, one key per example: mirror (with the
left/right labels and keypoints swapped), scale / rotation / shift (so people appear small,
large, cropped), background clutter behind the person, and colour jitter.

VITON photos are studio shots on white; users' photos are not. The same functions with
fixed parameters make the off-distribution test sets (``off_distribution``).
"""
import jax
import jax.numpy as jnp
import numpy as np

from tryon_jax.models.parser import LABEL_MIRROR

# OpenPose-18 indices swapped by a mirror (right <-> left).
KEYPOINT_MIRROR = np.array([0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16], np.int32)


def mirror(image, label, keypoints):
    """Horizontal flip of one example: image (H, W, 3), label (H, W), keypoints (18, 3) pixels."""
    w = image.shape[1]
    image, label = image[:, ::-1], jnp.asarray(LABEL_MIRROR)[label[:, ::-1]]
    present = keypoints[:, 2:3] > 0
    flipped = jnp.concatenate([w - 1 - keypoints[:, :1], keypoints[:, 1:]], axis=1)
    keypoints = jnp.where(present, flipped, 0.0)[KEYPOINT_MIRROR]
    return image, label, keypoints


def affine(scale, angle, shift, height: int, width: int):
    """2x3 matrix mapping source pixel centres to output pixel centres: scale and rotate about
    the image centre, then shift by ``shift`` (dx, dy) in pixels."""
    c, s = jnp.cos(angle) * scale, jnp.sin(angle) * scale
    cx, cy = (width - 1) / 2, (height - 1) / 2
    a = jnp.array([[c, -s], [s, c]])
    t = jnp.array([cx, cy]) + shift - a @ jnp.array([cx, cy])
    return jnp.concatenate([a, t[:, None]], axis=1)


def warp(image, label, keypoints, matrix):
    """Applies ``affine`` to one example. Outside the source: label 0 and ``valid`` 0."""
    h, w = label.shape
    a, t = matrix[:, :2], matrix[:, 2]
    inv = jnp.linalg.inv(a)
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    src = jnp.einsum("ij,hwj->hwi", inv, jnp.stack([xx, yy], -1) - t)
    sx, sy = src[..., 0], src[..., 1]
    valid = (sx > -0.5) & (sx < w - 0.5) & (sy > -0.5) & (sy < h - 0.5)
    coords = jnp.stack([sy, sx])
    image = jnp.stack([jax.scipy.ndimage.map_coordinates(image[..., c], coords, order=1, mode="nearest")
                       for c in range(image.shape[-1])], -1)
    nearest = jnp.round(coords).astype(jnp.int32)
    label = label[jnp.clip(nearest[0], 0, h - 1), jnp.clip(nearest[1], 0, w - 1)]
    label = jnp.where(valid, label, 0)
    moved = keypoints[:, :2] @ a.T + t
    inside = (keypoints[:, 2] > 0) & jnp.all((moved >= 0) & (moved <= jnp.array([w - 1, h - 1])), axis=1)
    keypoints = jnp.where(inside[:, None], jnp.concatenate([moved, keypoints[:, 2:]], 1), 0.0)
    return image, label, keypoints, valid


def clutter(key, source, height: int, width: int):
    """A busy background (H, W, 3) in [0, 1]: a random mix of a smooth colour field and a
    mirrored, rescaled picture (``source``, e.g. another product photo)."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    field = jax.random.uniform(k1, (4, 3, 3))
    field = jax.image.resize(field, (height, width, 3), "cubic").clip(0, 1)
    zoom = jax.random.uniform(k2, (), minval=1.0, maxval=2.5)
    m = affine(zoom, jax.random.uniform(k3, (), minval=-0.5, maxval=0.5), jnp.zeros(2), height, width)
    picture, _, _, _ = warp(source, jnp.zeros((height, width), jnp.int32), jnp.zeros((18, 3)), m)
    mix = jax.random.uniform(k4, ())
    return mix * picture[:, ::-1] + (1 - mix) * field


def dilate(mask, radius):
    """Binary dilation of an (H, W) bool mask by a square of ``radius`` (traced, <= 4)."""
    out = mask
    for r in range(1, 5):
        grown = jax.lax.reduce_window(mask.astype(jnp.float32), 0.0, jax.lax.max, (2 * r + 1, 2 * r + 1), (1, 1),
                                      "SAME") > 0
        out = jnp.where(radius >= r, grown, out)
    return out


def colour(key, image):
    """Brightness, contrast, saturation, hue (YIQ rotation), gamma and noise on [0, 1] RGB."""
    k = jax.random.split(key, 6)
    u = lambda i, lo, hi: jax.random.uniform(k[i], (), minval=lo, maxval=hi)  # noqa: E731
    grey = image @ jnp.array([0.299, 0.587, 0.114])
    image = grey[..., None] + u(0, 0.3, 1.5) * (image - grey[..., None])
    yiq = jnp.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    theta = u(1, -0.3, 0.3)
    rot = jnp.array([[1, 0, 0], [0, jnp.cos(theta), -jnp.sin(theta)], [0, jnp.sin(theta), jnp.cos(theta)]])
    image = image @ (jnp.linalg.inv(yiq) @ rot @ yiq).T
    mean = jnp.mean(image)
    image = (image - mean) * u(2, 0.7, 1.3) + mean + u(3, -0.15, 0.15)
    image = image.clip(0, 1) ** jnp.exp(u(4, -0.3, 0.3))
    return (image + 0.02 * jax.random.normal(k[5], image.shape) * (u(5, 0, 1) > 0.5)).clip(0, 1)


def augment(key, image, label, keypoints, source, p_clutter: float = 0.5, p_geometry: float = 0.7):
    """One training example -> its augmented version. image (H, W, 3) in [0, 1], label (H, W)
    int, keypoints (18, 3) pixels, source (H, W, 3) in [0, 1] for the clutter. With
    probability 1 - p_geometry the person keeps VITON's framing (only mirrored)."""
    h, w = label.shape
    k = jax.random.split(key, 8)
    flipped = mirror(image, label, keypoints)
    do_flip = jax.random.bernoulli(k[0])
    image, label, keypoints = (jnp.where(do_flip, a, b) for a, b in zip(flipped, (image, label, keypoints)))
    moved = jax.random.bernoulli(k[1], p_geometry)
    k1, k2, k3 = jax.random.split(k[2], 3)
    scale = jnp.where(moved, jnp.exp(jax.random.uniform(k1, (), minval=np.log(0.55), maxval=np.log(1.45))), 1.0)
    angle = jnp.where(moved, jax.random.uniform(k2, (), minval=-0.12, maxval=0.12), 0.0)
    shift = jnp.where(moved, jax.random.uniform(k3, (2,), minval=-0.2, maxval=0.2), 0.0) * jnp.array([w, h]) * scale
    image, label, keypoints, valid = warp(image, label, keypoints, affine(scale, angle, shift, h, w))
    plain = jnp.where(valid[..., None], image, 1.0)  # a white studio canvas outside the photo
    person = dilate(label > 0, jax.random.randint(k[4], (), 0, 5))
    busy = jnp.where(person[..., None] & valid[..., None], image, clutter(k[5], source, h, w))
    image = jnp.where(jax.random.bernoulli(k[6], p_clutter), busy, plain)
    return colour(k[7], image), label, keypoints


def off_distribution(kind: str, image, label, keypoints, source):
    """The fixed test-time variants: 'clean', 'clutter' (busy background), 'small' (0.6x,
    off-centre), 'crop' (1.45x upper body) and 'colour' (a strong, fixed colour shift)."""
    h, w = label.shape
    if kind == "clean":
        return image, label, keypoints
    if kind == "clutter":
        busy = clutter(jax.random.key(7), source, h, w)
        return jnp.where((label > 0)[..., None], image, busy), label, keypoints
    if kind in ("small", "crop"):
        scale, shift = (0.6, jnp.array([-0.12 * w, 0.1 * h])) if kind == "small" else (1.45, jnp.array([0.0, 0.3 * h]))
        image, label, keypoints, valid = warp(image, label, keypoints, affine(scale, 0.0, shift, h, w))
        return jnp.where(valid[..., None], image, 0.5), label, keypoints
    if kind == "colour":
        warm = image * jnp.array([1.15, 0.95, 0.7]) ** 1.0
        return (0.8 * warm + 0.1).clip(0, 1) ** 1.3, label, keypoints
    raise ValueError(f"unknown off-distribution kind {kind!r} (clean, clutter, small, crop, colour)")


OFF_DISTRIBUTION = ("clutter", "small", "crop", "colour")
