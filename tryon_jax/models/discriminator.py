"""pix2pixHD's PatchGAN discriminators: NLayerDiscriminator and MultiscaleDiscriminator.

Torch names are kept: ``model{j}.{k}`` (getIntermFeat) or ``model.{k}`` (flat Sequential) for a
single discriminator, ``scale{s}_layer{j}.{k}`` or ``layer{s}.{k}`` inside the multiscale one.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from tryon_jax.models import layers
from tryon_jax.models.norms import norm


def _nlayer(x, name, *, n_layers, ndf, norm_kind, use_sigmoid, interm, train, dtype):
    """Runs one PatchGAN; ``name(j, k_in_group, k_flat)`` names the layer (call in a compact scope).

    Returns the output of every group (getIntermFeat) or only the final map. Quirk: Conv k4 with
    padding 2 grows the maps (floor(H/2)+1, H+1); with getIntermFeat the Sigmoid group is never
    run (pix2pixHD copies only groups 0..n_layers+1)."""
    feats, flat = [], 0
    nf = ndf
    groups = [(ndf, 2, False)]
    for _ in range(1, n_layers):
        nf = min(nf * 2, 512)
        groups.append((nf, 2, True))
    groups.append((min(nf * 2, 512), 1, True))
    groups.append((1, 1, None))  # final conv: no norm, no activation
    for j, (features, stride, has_norm) in enumerate(groups):
        x = layers.at_least_float32(layers.conv(features, 4, stride, 2, name=name(j, 0, flat), dtype=dtype)(x))
        flat += 1
        if has_norm:
            x = norm(norm_kind, name(j, 1, flat), train)(x)
            flat += 1
        if has_norm is not None:
            x = layers.leaky_relu(x)
            flat += 1
        feats.append(x)
    if interm:
        return feats
    return [jax.nn.sigmoid(x) if use_sigmoid else x]


class NLayerDiscriminator(nn.Module):
    n_layers: int = 3
    ndf: int = 64
    norm: str = "instance"
    use_sigmoid: bool = False
    get_interm_feat: bool = False
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        name = (lambda j, k, f: f"model{j}_{k}") if self.get_interm_feat else (lambda j, k, f: f"model_{f}")
        return _nlayer(x, name, n_layers=self.n_layers, ndf=self.ndf, norm_kind=self.norm,
                       use_sigmoid=self.use_sigmoid, interm=self.get_interm_feat, train=train, dtype=self.dtype)


class MultiscaleDiscriminator(nn.Module):
    """result[i] is the discriminator applied to the input pooled i times, computed by the
    sub-network num_D-1-i (pix2pixHD quirk 8: result[0] uses the scale{num_D-1} weights).
    Pooling is AvgPool2d(3, 2, 1, count_include_pad=False)."""
    num_d: int = 2
    n_layers: int = 3
    ndf: int = 64
    norm: str = "instance"
    use_sigmoid: bool = False
    get_interm_feat: bool = True
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x, train: bool = False) -> list[list[jax.Array]]:
        results = []
        for i in range(self.num_d):
            s = self.num_d - 1 - i
            if self.get_interm_feat:
                name = lambda j, k, f, s=s: f"scale{s}_layer{j}_{k}"  # noqa: E731
            else:
                name = lambda j, k, f, s=s: f"layer{s}_{f}"  # noqa: E731
            results.append(_nlayer(x, name, n_layers=self.n_layers, ndf=self.ndf, norm_kind=self.norm,
                                   use_sigmoid=self.use_sigmoid, interm=self.get_interm_feat, train=train,
                                   dtype=self.dtype))
            if i != self.num_d - 1:
                x = layers.avg_pool3s2_exclude_pad(x)
        return results
