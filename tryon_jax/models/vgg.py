"""torchvision VGG19 ``features[0:30]`` split into the five slices of the perceptual loss
(relu1_1, relu2_1, relu3_1, relu4_1, relu5_1). Parameters are named ``features_{i}``."""
import flax.linen as nn
import jax.numpy as jnp

from tryon_jax.models import layers

# Slice boundaries in torchvision indices; 'M' = max-pool, numbers = conv output channels.
_SLICES = (
    ((0, 64),),
    ((2, 64), (4, "M"), (5, 128)),
    ((7, 128), (9, "M"), (10, 256)),
    ((12, 256), (14, 256), (16, 256), (18, "M"), (19, 512)),
    ((21, 512), (23, 512), (25, 512), (27, "M"), (28, 512)),
)
CONV_INDICES = tuple(i for s in _SLICES for i, c in s if c != "M")


class VGG19(nn.Module):
    """Returns [h_relu1, ..., h_relu5]. No ImageNet normalisation is applied here: ACGPN and
    pix2pixHD feed [-1, 1] images directly (quirk 24)."""
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x):
        outs = []
        for slice_layers in _SLICES:
            for index, what in slice_layers:
                if what == "M":
                    x = layers.max_pool2x2(x)
                else:
                    x = nn.relu(layers.conv(what, 3, 1, 1, name=f"features_{index}", dtype=self.dtype)(x))
            outs.append(layers.at_least_float32(x))
        return outs
