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


def size_multiple(model: Parser) -> int:
    """Input heights and widths must be multiples of this (every level halves, after the pool)."""
    return 2 ** len(model.widths) * model.input_pool


def check_scales(scales) -> tuple:
    """Test-time scales as a tuple of floats: 1.0 first (the heatmaps come from it), each in [0.5, 2]."""
    try:
        scales = tuple(float(s) for s in scales)
    except (TypeError, ValueError):
        raise ValueError(f"test-time scales {scales!r}: a list of numbers starting with 1.0") from None
    if not scales or scales[0] != 1.0 or not all(0.5 <= s <= 2.0 for s in scales):
        raise ValueError(f"test-time scales {list(scales)}: must start with 1.0, each in [0.5, 2]")
    return scales


def _rescaled_logits(model: Parser, params, image, scale: float):
    """Label logits of ``image`` resized by ``scale`` (edge-replicated to the network's size
    multiple around it), cropped and resized back to the image's size."""
    b, h, w, c = image.shape
    sh, sw = round(h * scale), round(w * scale)
    x = jax.image.resize(image, (b, sh, sw, c), "linear", antialias=True)
    m = size_multiple(model)
    top, left = (-sh % m) // 2, (-sw % m) // 2
    x = jnp.pad(x, ((0, 0), (top, -sh % m - top), (left, -sw % m - left), (0, 0)), mode="edge")
    logits = model.apply({"params": params}, x)["label_logits"][:, top:top + sh, left:left + sw]
    return jax.image.resize(logits, (b, h, w, NUM_LABELS), "linear")


def log_probs(model: Parser, params, image, flip: bool = False, scales=(1.0,)):
    """(label log-probabilities (B, H, W, NUM_LABELS), heatmaps) of images in [-1, 1].
    Test-time augmentation averages the log-probabilities of several views: ``flip`` adds the
    mirrored image (its left/right labels swapped back), ``scales`` the image resized by each
    factor (check_scales; 1.0 is the image itself). The heatmaps are the plain image's."""
    log_p, heatmaps = 0.0, None
    for scale in check_scales(scales):
        if scale == 1.0:
            out = model.apply({"params": params}, image)
            logits, heatmaps = out["label_logits"], out["heatmaps"]
        else:
            logits = _rescaled_logits(model, params, image, scale)
        view = jax.nn.log_softmax(logits)
        if flip:
            mirrored = (model.apply({"params": params}, image[:, :, ::-1])["label_logits"] if scale == 1.0
                        else _rescaled_logits(model, params, image[:, :, ::-1], scale))
            view = (view + jax.nn.log_softmax(mirrored[:, :, ::-1][..., LABEL_MIRROR])) / 2
        log_p = log_p + view
    return log_p / len(scales), heatmaps


def predict(model: Parser, params, image, flip: bool = False, label_bias=None, scales=(1.0,)):
    """(label ids (B, H, W), heatmaps) of images in [-1, 1], with ``flip`` and ``scales`` as in
    log_probs. ``label_bias``: (NUM_LABELS,) offsets added to the log-probabilities before the
    argmax (fitted on training persons by tryon_jax.person.training.parser_calibrate)."""
    log_p, heatmaps = log_probs(model, params, image, flip, scales)
    if label_bias is not None:
        log_p = log_p + jnp.asarray(label_bias, log_p.dtype)
    return jnp.argmax(log_p, -1), heatmaps
