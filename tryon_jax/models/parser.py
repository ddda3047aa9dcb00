"""The human parser: a small U-Net that predicts ACGPN's 14-label map and, as a second task,
OpenPose-18 heatmaps (an all-JAX pose fallback), from a person photo framed like VITON.

Input (B, H, W, 3) in [-1, 1] with H, W divisible by 32 * input_pool (VITON: 256x192). The
input is first average-pooled by ``input_pool``, and the encoder starts with a stride-2
block, so every convolution runs at 1 / (2 * input_pool) resolution or less; the label
logits are upsampled bilinearly to H x W (labels are large regions at this size; each
halving saves 4x in compute). Heatmaps come out at H/4 (HEATMAP_STRIDE).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

NUM_LABELS = 14
NUM_KEYPOINTS = 18
HEATMAP_STRIDE = 4
# ACGPN label ids swapped by a mirror: shoes 5<->6, legs 9<->10, arms 11<->13.
LABEL_MIRROR = np.array([0, 1, 2, 3, 4, 6, 5, 7, 8, 10, 9, 13, 12, 11], np.int32)


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


class ResidualBlock(nn.Module):
    """x + GroupNorm(conv3x3(ReLU(GroupNorm(conv3x3(x))))), then ReLU. The last norm's scale
    starts at zero, so a new block is the identity on the (non-negative) features it gets:
    blocks added to a trained network leave its outputs unchanged until they learn."""
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        features = x.shape[-1]
        conv = lambda name: nn.Conv(features, (3, 3), padding="SAME", use_bias=False, dtype=self.dtype,  # noqa: E731
                                    name=name)
        groups = min(8, features // 4)
        y = nn.relu(nn.GroupNorm(num_groups=groups, dtype=self.dtype, name="norm1")(conv("conv1")(x)))
        y = nn.GroupNorm(num_groups=groups, dtype=self.dtype, scale_init=nn.initializers.zeros,
                         name="norm2")(conv("conv2")(y))
        return nn.relu(x + y)


def upsample2(x):
    b, h, w, c = x.shape
    return jax.image.resize(x, (b, 2 * h, 2 * w, c), "bilinear")


class Parser(nn.Module):
    """U-Net: stem /2, encoder /4 /8 /16 /32 with a global-context vector, decoder back to /2.
    ``extra_blocks[i]``: residual blocks after encoder level i (missing entries: none); they
    deepen the low-resolution levels, where convolutions are cheap."""
    widths: tuple = (16, 32, 64, 96, 128)
    input_pool: int = 1
    extra_blocks: tuple = ()
    dtype: jnp.dtype = jnp.float32

    @classmethod
    def from_meta(cls, meta: dict) -> "Parser":
        """The network a weights file's metadata (parser.json) describes."""
        return cls(tuple(meta.get("widths", cls.widths)), meta.get("input_pool", 1),
                   tuple(meta.get("extra_blocks", ())))

    @nn.compact
    def __call__(self, image):
        b, h, w, _ = image.shape
        x = image.astype(self.dtype)
        if self.input_pool > 1:
            x = nn.avg_pool(x, (self.input_pool,) * 2, (self.input_pool,) * 2)
        heatmap_level = HEATMAP_STRIDE // (2 * self.input_pool) - 1  # decoder level at stride 4
        if heatmap_level < 0:
            raise ValueError(f"input_pool {self.input_pool} leaves no decoder level at stride {HEATMAP_STRIDE}")
        if len(self.extra_blocks) > len(self.widths) or min(self.extra_blocks, default=0) < 0:
            raise ValueError(f"extra_blocks {self.extra_blocks}: one count >= 0 per level of widths {self.widths}")
        skips = []
        for i, f in enumerate(self.widths):
            x = ConvBlock(f, strides=2, dtype=self.dtype, name=f"down{i}")(x)
            for k in range(self.extra_blocks[i] if i < len(self.extra_blocks) else 0):
                x = ResidualBlock(dtype=self.dtype, name=f"res{i}_{k}")(x)
            skips.append(x)
        context = jnp.mean(x, axis=(1, 2), keepdims=True)
        context = nn.relu(nn.Dense(self.widths[-1], dtype=self.dtype, name="context")(context))
        x = x + context
        heatmaps = None
        for i in reversed(range(len(self.widths) - 1)):
            x = jnp.concatenate([upsample2(x), skips[i]], axis=-1)
            x = ConvBlock(self.widths[i], dtype=self.dtype, name=f"up{i}")(x)
            if i == heatmap_level:
                heatmaps = nn.Conv(NUM_KEYPOINTS, (1, 1), dtype=self.dtype, kernel_init=nn.initializers.zeros,
                                   name="heatmaps")(x)  # starts at the all-zero map
        logits = nn.Conv(NUM_LABELS, (3, 3), padding="SAME", dtype=self.dtype, name="labels")(x)
        logits = jax.image.resize(logits, (b, h, w, NUM_LABELS), "bilinear")
        return {"label_logits": logits.astype(jnp.float32), "heatmaps": heatmaps.astype(jnp.float32)}


def log_probs(model: Parser, params, image, flip: bool = False):
    """(label log-probabilities (B, H, W, NUM_LABELS), heatmaps) of images in [-1, 1].
    ``flip``: averaged with those of the mirrored image (its left/right labels swapped back),
    a test-time augmentation; the heatmaps are the unmirrored image's."""
    out = model.apply({"params": params}, image)
    log_p = jax.nn.log_softmax(out["label_logits"])
    if flip:
        mirrored = model.apply({"params": params}, image[:, :, ::-1])["label_logits"][:, :, ::-1]
        log_p = (log_p + jax.nn.log_softmax(mirrored[..., LABEL_MIRROR])) / 2
    return log_p, out["heatmaps"]


def predict(model: Parser, params, image, flip: bool = False, label_bias=None):
    """(label ids (B, H, W), heatmaps) of images in [-1, 1], with ``flip`` as in log_probs.
    ``label_bias``: (NUM_LABELS,) offsets added to the log-probabilities before the argmax
    (fitted on training persons by tryon_jax.parser_calibrate)."""
    log_p, heatmaps = log_probs(model, params, image, flip)
    if label_bias is not None:
        log_p = log_p + jnp.asarray(label_bias, log_p.dtype)
    return jnp.argmax(log_p, -1), heatmaps
