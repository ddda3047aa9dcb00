"""PyTorch-exact building blocks in NHWC.

Each function or module here reproduces one torch op numerically: padding conventions,
InstanceNorm2d(affine=False), nearest upsampling, pooling with torch's border rules,
grid_sample(align_corners=False, zeros) and OpenCV's binary dilation.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

EPS = 1e-5  # torch InstanceNorm2d / BatchNorm2d default


def at_least_float32(x: jax.Array) -> jax.Array:
    """Low-precision activations (bfloat16, float16) as float32 for norms, losses and outputs;
    float32 and float64 stay as they are (float64 runs are how equivalence tests avoid
    CPU-dependent rounding)."""
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def conv(features: int, kernel: int, stride: int = 1, padding: int = 0, name: str | None = None,
         dtype=None) -> nn.Conv:
    """torch.nn.Conv2d(k, stride, zero padding, bias=True) as a Flax Conv (kernel HWIO)."""
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                   padding=((padding, padding), (padding, padding)), name=name, dtype=dtype)


# Below this many low-resolution pixels (batch x height x width) the phase kernels cost more to
# form than the 20 of 36 taps per output pixel they save (benchmarks/conv_lowering.py measures both).
PHASED_MIN_PIXELS = 512


def _phase_taps(w: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    """A 3-tap kernel axis after nearest x2 upsampling, as two 2-tap kernels at the low
    resolution: even outputs read (t-1, t) with (w0, w1 + w2), odd ones (t, t+1) with
    (w0 + w1, w2)."""
    w0, w1, w2 = (jnp.take(w, i, axis=axis) for i in range(3))
    return jnp.stack([w0, w1 + w2], axis), jnp.stack([w0 + w1, w2], axis)


def upsample2x_conv3x3(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                       dimension_numbers=None, feature_group_count=1, precision=None):
    """conv3x3(UpsamplingNearest2d(lhs), rhs) with zero padding 1, NHWC/HWIO; the signature of
    lax.conv_general_dilated so that nn.Conv keeps its parameters.

    An output pixel's 3x3 taps fall on only 2x2 distinct low-resolution pixels, so the four
    output phases are one 2x2 convolution at the low resolution with 4x the output channels:
    16 taps per low-resolution pixel instead of 36, summing the same products (the merged
    weights w0 + w1 and w1 + w2 round once more). Small inputs take the plain upsample + conv,
    whose kernel needs no merging, and so do dtypes other than float32: XLA:CPU has no fast 2x2
    convolution for them (float64 ran 300x slower).
    """
    if (lhs.ndim != 4 or rhs.shape[:2] != (3, 3) or tuple(window_strides) != (1, 1) or feature_group_count != 1
            or tuple(map(tuple, padding)) != ((1, 1), (1, 1))):
        raise ValueError("upsample2x_conv3x3 is a 3x3, stride 1, padding 1 convolution of NHWC images")
    dimension_numbers = dimension_numbers or ("NHWC", "HWIO", "NHWC")
    b, h, w, _ = lhs.shape
    if lhs.dtype != jnp.float32 or (b if isinstance(b, int) else 1) * h * w < PHASED_MIN_PIXELS:
        return jax.lax.conv_general_dilated(upsample_nearest2x(lhs), rhs, (1, 1), padding,
                                            dimension_numbers=dimension_numbers, precision=precision)
    return phased_upsample2x_conv3x3(lhs, rhs, dimension_numbers, precision)


def phased_upsample2x_conv3x3(lhs, rhs, dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=None):
    """``upsample2x_conv3x3`` as the four output phases of one 2x2 convolution, at any size."""
    b, h, w, _ = lhs.shape
    phases = [kw for kh in _phase_taps(rhs, 0) for kw in _phase_taps(kh, 1)]  # (a, b) = 00, 01, 10, 11
    out = jax.lax.conv_general_dilated(lhs, jnp.concatenate(phases, -1), (1, 1), ((1, 1), (1, 1)),
                                       dimension_numbers=dimension_numbers, precision=precision)
    c = rhs.shape[-1]
    # Phase (a, b) of low-res pixel (i, j) is output pixel (2i + a, 2j + b), read at out[i + a, j + b].
    rows = [jnp.stack([out[:, a:a + h, bb:bb + w, (2 * a + bb) * c:(2 * a + bb + 1) * c] for bb in (0, 1)], 3)
            for a in (0, 1)]
    return jnp.stack(rows, 2).reshape(b, 2 * h, 2 * w, c)


def upsample_conv(features: int, name: str | None = None, dtype=None) -> nn.Conv:
    """torch Sequential(UpsamplingNearest2d(2), Conv2d(k=3, padding=1)) as one Flax Conv (the
    same parameters as ``conv``) computed by ``upsample2x_conv3x3``."""
    return nn.Conv(features, (3, 3), padding=((1, 1), (1, 1)), name=name, dtype=dtype,
                   conv_general_dilated=upsample2x_conv3x3)


class ConvTranspose(nn.Module):
    """torch.nn.ConvTranspose2d(k, stride, padding, output_padding).

    The kernel is stored as (kh, kw, out, in): the torch (in, out, kh, kw) weight permuted
    with the same (2, 3, 1, 0) transpose as every conv, so one conversion rule fits all.
    It runs as a conv with lhs dilation `stride`, padding (k-1-p, k-1-p+output_padding)
    and the spatially flipped kernel with in/out swapped.
    """
    features: int
    kernel: int = 3
    stride: int = 2
    padding: int = 1
    output_padding: int = 1
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x):
        in_features = x.shape[-1]
        fan_in = self.features * self.kernel * self.kernel
        kernel = self.param("kernel", nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform",
                                                                       in_axis=(0, 1, 2), out_axis=3),
                            (self.kernel, self.kernel, self.features, in_features))
        bound = 1.0 / np.sqrt(fan_in)
        bias = self.param("bias", nn.initializers.uniform(2 * bound), (self.features,))
        hwio = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
        lo = self.kernel - 1 - self.padding
        hi = lo + self.output_padding
        dtype = self.dtype or x.dtype
        y = jax.lax.conv_general_dilated(
            x.astype(dtype), hwio.astype(dtype), window_strides=(1, 1), padding=((lo, hi), (lo, hi)),
            lhs_dilation=(self.stride, self.stride), dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + bias.astype(dtype)


def instance_norm(x: jax.Array, eps: float = EPS) -> jax.Array:
    """InstanceNorm2d(affine=False, track_running_stats=False): per sample and channel,
    biased variance, used the same way in train and eval."""
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps)


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
    """ReflectionPad2d: mirror without repeating the edge pixel."""
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def upsample_nearest2x(x: jax.Array) -> jax.Array:
    """UpsamplingNearest2d(scale_factor=2)."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def max_pool2x2(x: jax.Array) -> jax.Array:
    """MaxPool2d(2): floor mode, no padding."""
    return nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")


def avg_pool3s2_exclude_pad(x: jax.Array) -> jax.Array:
    """AvgPool2d(3, stride=2, padding=1, count_include_pad=False): border windows divide by
    the number of taps inside the image."""
    pads = ((0, 0), (1, 1), (1, 1), (0, 0))
    window, strides = (1, 3, 3, 1), (1, 2, 2, 1)
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, pads)
    ones = jnp.ones((1,) + x.shape[1:3] + (1,), x.dtype)
    count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, strides, pads)
    return total / count


def leaky_relu(x: jax.Array) -> jax.Array:
    return jnp.where(x >= 0, x, 0.2 * x)


def grid_sample(image: jax.Array, grid: jax.Array) -> jax.Array:
    """torch.nn.functional.grid_sample(mode='bilinear', padding_mode='zeros',
    align_corners=False) for NHWC images and (B, Ho, Wo, 2) grids in (x, y) order."""
    _, h, w, _ = image.shape
    # Same op order as ATen's grid_sampler_compute_source_index (unnormalize, align_corners=False).
    ix = ((grid[..., 0] + 1) * w - 1) / 2
    iy = ((grid[..., 1] + 1) * h - 1) / 2
    x0 = jnp.floor(ix)
    y0 = jnp.floor(iy)
    # Corner weights as ATen forms them: distances to the opposite corner.
    wx0, wx1 = (x0 + 1) - ix, ix - x0
    wy0, wy1 = (y0 + 1) - iy, iy - y0

    def tap(img, yy, xx, weight):
        valid = (xx >= 0) & (xx <= w - 1) & (yy >= 0) & (yy <= h - 1)
        yi = jnp.clip(yy, 0, h - 1).astype(jnp.int32)
        xi = jnp.clip(xx, 0, w - 1).astype(jnp.int32)
        return img[yi, xi] * jnp.where(valid, weight, 0)[..., None]

    def one(img, x0, y0, wx0, wx1, wy0, wy1):
        # ATen sums nw, ne, sw, se in this order.
        out = tap(img, y0, x0, wx0 * wy0)
        out = out + tap(img, y0, x0 + 1, wx1 * wy0)
        out = out + tap(img, y0 + 1, x0, wx0 * wy1)
        out = out + tap(img, y0 + 1, x0 + 1, wx1 * wy1)
        return out

    return jax.vmap(one)(image, x0, y0, wx0, wx1, wy0, wy1)


def grid_sample_canvas(image: jax.Array, grid: jax.Array) -> jax.Array:
    """ACGPN's grid_sample(input, grid, canvas=0) wrapper: out * m with m = grid_sample(ones).

    Quirk (golden README 16): zero padding already darkens border samples; the coverage
    factor attenuates them a second time.
    """
    out = grid_sample(image, grid)
    coverage = grid_sample(jnp.ones(image.shape[:3] + (1,), image.dtype), grid)
    return out * coverage


def _morph_cross(mask: jax.Array, iterations: int, reduce, border: float) -> jax.Array:
    def step(_, m):
        p = jnp.pad(m, [(0, 0)] * (m.ndim - 3) + [(1, 1), (1, 1), (0, 0)], constant_values=border)
        c = p[..., 1:-1, 1:-1, :]
        up, down = p[..., :-2, 1:-1, :], p[..., 2:, 1:-1, :]
        left, right = p[..., 1:-1, :-2, :], p[..., 1:-1, 2:, :]
        return reduce(reduce(reduce(c, up), reduce(down, left)), right)
    return jax.lax.fori_loop(0, iterations, step, mask)


def dilate_cross(mask: jax.Array, iterations: int) -> jax.Array:
    """cv2.dilate with the 3x3 MORPH_ELLIPSE kernel (a plus-shaped cross), default border
    (nothing grows in from outside the image). (..., H, W, C) inputs."""
    return _morph_cross(mask, iterations, jnp.maximum, -jnp.inf)


def erode_cross(mask: jax.Array, iterations: int) -> jax.Array:
    """cv2.erode with the cross kernel; the default border does not shrink masks at the edge."""
    return _morph_cross(mask, iterations, jnp.minimum, jnp.inf)


def one_hot(label_map: jax.Array, num_classes: int, dtype=jnp.float32) -> jax.Array:
    """scatter_-style one-hot of an (B, H, W, 1) float class map -> (B, H, W, num_classes)."""
    return jax.nn.one_hot(label_map[..., 0].astype(jnp.int32), num_classes, dtype=dtype)

