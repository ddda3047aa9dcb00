"""The Inception Score protocol of sbarratt/inception-score-pytorch and pool3 features for FID,
with torchvision's Inception v3 (tryon_jax.models.inception).

Weights come from a torchvision-keyed state dict the user supplies as a .pth file (read
safely, tryon_jax.weights.convert); nothing is downloaded.
"""
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from tryon_jax.models.inception import InceptionV3
from tryon_jax.weights import convert


@functools.lru_cache(maxsize=None)
def _bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
    """nn.Upsample(mode='bilinear', align_corners=False) along one axis as an (out, in) matrix:
    source = (dst + 0.5) * in/out - 0.5, clamped at 0, float32 like ATen."""
    scale = np.float32(in_size / out_size)
    src = np.maximum((np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5), 0)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, in_size - 1)
    lam = (src - i0).astype(np.float32)
    m = np.zeros((out_size, in_size), np.float32)
    m[np.arange(out_size), i0] += 1 - lam
    m[np.arange(out_size), i1] += lam
    return m


def resize_bilinear(x: jax.Array, height: int = 299, width: int = 299) -> jax.Array:
    """PyTorch's bilinear upsampling (align_corners=False, no antialiasing) of NHWC images."""
    mh = jnp.asarray(_bilinear_matrix(x.shape[1], height))
    mw = jnp.asarray(_bilinear_matrix(x.shape[2], width))
    hp = jax.lax.Precision.HIGHEST
    x = jnp.einsum("oh,bhwc->bowc", mh, x, precision=hp)
    return jnp.einsum("pw,bowc->bopc", mw, x, precision=hp)


def preprocess(images_uint8: jax.Array, resize: bool = True) -> jax.Array:
    """sbarratt's protocol: x = (uint8 / 255) * 2 - 1, optional bilinear resize to 299x299."""
    x = images_uint8.astype(jnp.float32) / 255 * 2 - 1
    return resize_bilinear(x) if resize else x


@functools.partial(jax.jit, static_argnames=("resize",))
def logits_and_pool3(variables, images_uint8, resize: bool = True):
    return InceptionV3().apply(variables, preprocess(images_uint8, resize))


def load_variables(path) -> dict:
    """Inception v3 variables from a torchvision-keyed .pth (e.g. the state_dict of
    torchvision.models.inception_v3 weights, saved with torch.save); AuxLogits keys are ignored."""
    path = os.fspath(path) if path else ""
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(
            f"Inception v3 weights not found: {path or '(none given)'}. Pass a .pth file with the torchvision "
            "inception_v3 state_dict (e.g. torch.save(torchvision.models.inception_v3(weights='DEFAULT')"
            ".state_dict(), 'inception_v3.pth') on a machine with torch); nothing is downloaded.")
    return convert.inception_variables(convert.state_dict_of(convert.read_torch_checkpoint(path), path))
