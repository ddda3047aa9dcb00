"""SSIM as pytorch-ssim computes it (ACGPN's evaluation) and MS-SSIM as pytorch_msssim does.

Images are NHWC floats. The two libraries differ on purpose and both are reproduced:
* ``ssim`` (pytorch-ssim): 11x11 Gaussian (sigma 1.5) per channel with **zero padding 5**, so
  the map has the input size and its border ring (darkened by the padding) is averaged in;
  variances as E[x^2] - E[x]^2; C1 = (0.01 L)^2, C2 = (0.03 L)^2; L = 1 for [0, 1] inputs.
* ``ms_ssim`` (pytorch_msssim): separable Gaussian with **valid** convolution, 5 levels with
  weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), relu'd mean cs of levels 0-3 and mean
  ssim of level 4, product per channel, then the channel mean; between levels AvgPool(2, 2)
  with padding (H % 2, W % 2) and count_include_pad=True; L = 255 for [0, 255] inputs.
The window is built in float64 (the libraries' float32 window moves SSIM by up to 1e-5).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


@functools.lru_cache(maxsize=None)
def gaussian(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    k = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(k ** 2) / (2 * sigma ** 2))
    return g / g.sum()


@functools.lru_cache(maxsize=None)
def _band(n: int, size: int, sigma: float, padding: int) -> np.ndarray:
    """(out, n) matrix of a 1-D Gaussian correlation with zero padding ``padding``."""
    g = gaussian(size, sigma)
    out = n + 2 * padding - size + 1
    m = np.zeros((out, n))
    for o in range(out):
        for k in range(size):
            i = o + k - padding
            if 0 <= i < n:
                m[o, i] = g[k]
    return m


def _blur(x: jax.Array, size: int, sigma: float, padding: int) -> jax.Array:
    """Separable Gaussian per channel with zero padding ``padding``, as two banded matmuls
    (much faster than depthwise convolutions on CPU, the same sums)."""
    hp = jax.lax.Precision.HIGHEST
    mh = jnp.asarray(_band(x.shape[1], size, sigma, padding), x.dtype)
    mw = jnp.asarray(_band(x.shape[2], size, sigma, padding), x.dtype)
    x = jnp.einsum("oh,bhwc->bowc", mh, x, precision=hp)
    return jnp.einsum("pw,bhwc->bhpc", mw, x, precision=hp)


def _maps(x, y, size, sigma, padding, data_range):
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _blur(x, size, sigma, padding), _blur(y, size, sigma, padding)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    s_x = _blur(x * x, size, sigma, padding) - mu_xx
    s_y = _blur(y * y, size, sigma, padding) - mu_yy
    s_xy = _blur(x * y, size, sigma, padding) - mu_xy
    cs = (2 * s_xy + c2) / (s_x + s_y + c2)
    return ((2 * mu_xy + c1) / (mu_xx + mu_yy + c1)) * cs, cs


def ssim_map(x: jax.Array, y: jax.Array, window: int = 11, sigma: float = 1.5, data_range: float = 1.0):
    """pytorch-ssim's map, same size as the input (zero padding window // 2)."""
    return _maps(x, y, window, sigma, window // 2, data_range)[0]


@functools.partial(jax.jit, static_argnames=("window", "sigma", "data_range"))
def ssim(x: jax.Array, y: jax.Array, window: int = 11, sigma: float = 1.5, data_range: float = 1.0) -> jax.Array:
    """Per-image SSIM (B,) as pytorch-ssim: the mean of the map over H, W and C."""
    return jnp.mean(ssim_map(x, y, window, sigma, data_range), axis=(1, 2, 3))


def _avg_pool_msssim(x: jax.Array) -> jax.Array:
    """avg_pool2d(kernel 2, stride 2, padding (H % 2, W % 2)), count_include_pad=True."""
    ph, pw = x.shape[1] % 2, x.shape[2] % 2
    x = jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4


def ssim_valid(x, y, window: int = 11, sigma: float = 1.5, data_range: float = 255.0):
    """pytorch_msssim's single-scale (ssim, cs) per image and channel: (B, C) each."""
    s, cs = _maps(x, y, window, sigma, 0, data_range)
    return jnp.mean(s, axis=(1, 2)), jnp.mean(cs, axis=(1, 2))


@functools.partial(jax.jit, static_argnames=("window", "sigma", "data_range", "weights"))
def ms_ssim(x: jax.Array, y: jax.Array, window: int = 11, sigma: float = 1.5, data_range: float = 255.0,
            weights: tuple = MS_WEIGHTS) -> jax.Array:
    """Per-image MS-SSIM (B,) as pytorch_msssim.ms_ssim(size_average=False)."""
    smaller = min(x.shape[1:3])
    if smaller <= (window - 1) * 2 ** (len(weights) - 1):
        raise ValueError(f"MS-SSIM with window {window} needs min(H, W) > {(window - 1) * 2 ** (len(weights) - 1)}, "
                         f"got {x.shape[1]}x{x.shape[2]}")
    values = []
    for level in range(len(weights)):
        s, cs = ssim_valid(x, y, window, sigma, data_range)
        if level < len(weights) - 1:
            values.append(jax.nn.relu(cs))
            x, y = _avg_pool_msssim(x), _avg_pool_msssim(y)
    values.append(jax.nn.relu(s))
    stacked = jnp.stack(values)  # (levels, B, C)
    per_channel = jnp.prod(stacked ** jnp.asarray(weights, stacked.dtype)[:, None, None], axis=0)
    return jnp.mean(per_channel, axis=-1)
