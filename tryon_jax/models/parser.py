"""The human parser: a small U-Net that predicts ACGPN's 14-label map and, as a second task,
OpenPose-18 heatmaps (an all-JAX pose fallback), from a person photo framed like VITON.

Input (B, H, W, 3) in [-1, 1] with H, W divisible by 32 (VITON: 256x192). The encoder starts
with a stride-2 stem, so every convolution runs at half resolution or less; the label
logits are predicted at H/2 and upsampled bilinearly to H (labels are large regions at
this size, and the saving is 4x in compute). Heatmaps come out at H/4.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

NUM_LABELS = 14
NUM_KEYPOINTS = 18


class ConvBlock(nn.Module):
    """conv3x3 -> GroupNorm -> ReLU, twice, with a residual 1x1 projection."""
    features: int
    strides: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        conv = lambda f, s, k=3, name=None: nn.Conv(f, (k, k), (s, s), padding="SAME", use_bias=False,  # noqa: E731
                                                     dtype=self.dtype, name=name)
        norm = lambda name: nn.GroupNorm(num_groups=min(8, self.features // 4), dtype=self.dtype, name=name)  # noqa
        skip = conv(self.features, self.strides, 1, "skip")(x)
        y = nn.relu(norm("norm1")(conv(self.features, self.strides, name="conv1")(x)))
        y = norm("norm2")(conv(self.features, 1, name="conv2")(y))
        return nn.relu(y + skip)


def upsample2(x):
    b, h, w, c = x.shape
    return jax.image.resize(x, (b, 2 * h, 2 * w, c), "bilinear")


class Parser(nn.Module):
    """U-Net: stem /2, encoder /4 /8 /16 /32 with a global-context vector, decoder back to /2."""
    widths: tuple = (16, 32, 64, 96, 128)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, image):
        x = image.astype(self.dtype)
        skips = []
        for i, f in enumerate(self.widths):
            x = ConvBlock(f, strides=2, dtype=self.dtype, name=f"down{i}")(x)
            skips.append(x)
        context = jnp.mean(x, axis=(1, 2), keepdims=True)
        context = nn.relu(nn.Dense(self.widths[-1], dtype=self.dtype, name="context")(context))
        x = x + context
        heatmaps = None
        for i in reversed(range(len(self.widths) - 1)):
            x = jnp.concatenate([upsample2(x), skips[i]], axis=-1)
            x = ConvBlock(self.widths[i], dtype=self.dtype, name=f"up{i}")(x)
            if i == 1:
                heatmaps = nn.Conv(NUM_KEYPOINTS, (1, 1), dtype=self.dtype, name="heatmaps")(x)
        logits = nn.Conv(NUM_LABELS, (3, 3), padding="SAME", dtype=self.dtype, name="labels")(x)
        return {"label_logits": upsample2(logits).astype(jnp.float32), "heatmaps": heatmaps.astype(jnp.float32)}
