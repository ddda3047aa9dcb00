"""ACGPN's generators: the Refine U-Net (G1, G2, G) and UnetMask (U-Net + bounded STN).

Parameter names follow the torch state_dict (conv1.0 -> conv1_0, up6.1 -> up6_1, ...), see
tryon_jax.weights.convert.
"""
import flax.linen as nn
import jax.numpy as jnp

from tryon_jax.models import layers
from tryon_jax.models.tps import STN

_DOWN = ((1, 1), (2, 2), (3, 4), (4, 8), (5, 16))  # (block index, width / ngf)
_UP = ((6, 8), (7, 4), (8, 2), (9, 1))


class Refine(nn.Module):
    """The Refine U-Net (quirk 10): 5 levels of [Conv3x3, IN, ReLU] x 2 with 2x2 max-pool,
    dropout after conv4/conv5, nearest x2 upsampling + Conv3x3/IN/ReLU, skip concatenated
    first, and a final Conv3x3 (conv9.6) with bias and no activation. Returns raw logits."""
    out_channels: int
    dropout_rate: float = 0.0  # 0.5 in the inference code (identity in eval); removed in ACGPN_train
    dtype: jnp.dtype | None = None
    ngf: int = 64  # base width (64 in ACGPN; smaller for the demo)

    def _conv_in_relu(self, x, features, name, upsample=False):
        conv = layers.upsample_conv(features, name, self.dtype) if upsample else layers.conv(
            features, 3, 1, 1, name=name, dtype=self.dtype)
        x = conv(x)
        return nn.relu(layers.instance_norm(layers.at_least_float32(x))).astype(x.dtype)

    def _block(self, x, index, features):
        x = self._conv_in_relu(x, features, f"conv{index}_0")
        return self._conv_in_relu(x, features, f"conv{index}_3")

    def _unet(self, x, deterministic):
        if x.shape[1] % 16 or x.shape[2] % 16:
            raise ValueError(f"the U-Net needs H and W divisible by 16, got {x.shape[1:3]}")
        if self.dtype is not None:
            x = x.astype(self.dtype)
        skips = []
        for i, (index, mult) in enumerate(_DOWN):
            x = self._block(layers.max_pool2x2(x) if i else x, index, mult * self.ngf)
            if index >= 4:
                x = nn.Dropout(self.dropout_rate, deterministic=deterministic or not self.dropout_rate)(x)
            skips.append(x)
        y = skips.pop()
        self.sow("intermediates", "conv5", y)
        for index, mult in _UP:
            y = self._conv_in_relu(y, mult * self.ngf, f"up{index}_1", upsample=True)
            y = self._block(jnp.concatenate([skips.pop(), y], axis=-1), index, mult * self.ngf)
        y = layers.conv(self.out_channels, 3, 1, 1, name="conv9_6", dtype=self.dtype)(y)
        return layers.at_least_float32(y)

    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        return self._unet(x, deterministic)


class UnetMask(Refine):
    """ACGPN's U: the STN warps the cloth towards the predicted cloth region, then the U-Net
    body (same graph as Refine, 4 -> 4) refines cat[refer, warped]."""
    out_channels: int = 4
    dropout_rate: float = 0.5  # active while training (golden runs are eval mode)

    @nn.compact
    def __call__(self, clothes, refer, mask, grid_pic, deterministic: bool = True):
        out = STN(name="stn", dtype=self.dtype)(clothes, refer, mask, grid_pic, deterministic)
        out["fake_c_unet_raw"] = self._unet(jnp.concatenate([refer, out["warped"]], -1), deterministic)
        return out
