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

