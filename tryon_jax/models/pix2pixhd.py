"""pix2pixHD generators: GlobalGenerator (coarse), LocalEnhancer (fine), Encoder with
instance-wise average pooling, and the instance-boundary map.

Each network is written as the list of layers of its torch ``nn.Sequential`` so that the
Sequential index of every layer is its Flax name (``model.10`` -> ``model_10``).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from tryon_jax.models import layers
from tryon_jax.models.norms import norm

# Layer specs: ("pad", p) ReflectionPad2d, ("conv", out, k, stride, zero_pad), ("convT", out),
# ("norm",), ("relu",), ("tanh",), ("res", dim) ResnetBlock.


def _global_specs(output_nc, ngf, n_down, n_blocks, final=True):
    specs = [("pad", 3), ("conv", ngf, 7, 1, 0), ("norm",), ("relu",)]
    for i in range(n_down):
        specs += [("conv", ngf * 2 ** (i + 1), 3, 2, 1), ("norm",), ("relu",)]
    specs += [("res", ngf * 2 ** n_down)] * n_blocks
    for i in range(n_down):
        specs += [("convT", ngf * 2 ** (n_down - i) // 2), ("norm",), ("relu",)]
    if final:
        specs += [("pad", 3), ("conv", output_nc, 7, 1, 0), ("tanh",)]
    return specs


def _run(x, specs, prefix, norm_kind, train, dtype):
    """Applies the specs; call inside a compact method. Layer i is named f'{prefix}_{i}'."""
    for i, spec in enumerate(specs):
        name = f"{prefix}_{i}"
        kind = spec[0]
        if kind == "pad":
            x = layers.reflect_pad(x, spec[1])
        elif kind == "conv":
            _, out, k, stride, pad = spec
            x = layers.at_least_float32(layers.conv(out, k, stride, pad, name=name, dtype=dtype)(x))
        elif kind == "convT":
            x = layers.at_least_float32(layers.ConvTranspose(spec[1], name=name, dtype=dtype)(x))
        elif kind == "norm":
            x = norm(norm_kind, name, train)(x)
        elif kind == "relu":
            x = nn.relu(x)
        elif kind == "tanh":
            x = jnp.tanh(x)
        elif kind == "res":
            x = ResnetBlock(spec[1], norm_kind, dtype, name=name)(x, train)
        else:
            raise ValueError(spec)
    return x


class ResnetBlock(nn.Module):
    """x + [pad1, conv3, norm, ReLU, pad1, conv3, norm](x); no ReLU after the sum."""
    dim: int
    norm: str = "instance"
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        specs = [("pad", 1), ("conv", self.dim, 3, 1, 0), ("norm",), ("relu",),
                 ("pad", 1), ("conv", self.dim, 3, 1, 0), ("norm",)]
        return x + _run(x, specs, "conv_block", self.norm, train, self.dtype)


def _check_size(x, multiple, minimum, what):
    h, w = x.shape[1:3]
    if h % multiple or w % multiple or h < minimum or w < minimum:
        raise ValueError(f"{what} needs H and W that are multiples of {multiple} and at least {minimum}, "
                         f"got {h}x{w}")


class GlobalGenerator(nn.Module):
    output_nc: int = 3
    ngf: int = 64
    n_downsampling: int = 3
    n_blocks: int = 9
    norm: str = "batch"
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        _check_size(x, 2 ** self.n_downsampling, 2 ** (self.n_downsampling + 1), "GlobalGenerator")
        specs = _global_specs(self.output_nc, self.ngf, self.n_downsampling, self.n_blocks)
        return _run(x, specs, "model", self.norm, train, self.dtype)


class LocalEnhancer(nn.Module):
    """Coarse trunk (GlobalGenerator with 2^n ngf, last 3 layers dropped) on the pooled input, plus
    per enhancer ``model{n}_1`` (front end) and ``model{n}_2`` (res blocks, up-sampling, head)."""
    output_nc: int = 3
    ngf: int = 32
    n_downsample_global: int = 3
    n_blocks_global: int = 9
    n_local_enhancers: int = 1
    n_blocks_local: int = 3
    norm: str = "batch"
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        n_total = self.n_downsample_global + self.n_local_enhancers
        _check_size(x, 2 ** n_total, 2 ** (n_total + 1), "LocalEnhancer")
        pyramid = [x]
        for _ in range(self.n_local_enhancers):
            pyramid.append(layers.avg_pool3s2_exclude_pad(pyramid[-1]))
        ngf_global = self.ngf * 2 ** self.n_local_enhancers
        trunk = _global_specs(self.output_nc, ngf_global, self.n_downsample_global, self.n_blocks_global, final=False)
        out = _run(pyramid[-1], trunk, "model", self.norm, train, self.dtype)
        self.sow("intermediates", "coarse_out", out)
        for n in range(1, self.n_local_enhancers + 1):
            ngf_n = self.ngf * 2 ** (self.n_local_enhancers - n)
            front = [("pad", 3), ("conv", ngf_n, 7, 1, 0), ("norm",), ("relu",),
                     ("conv", ngf_n * 2, 3, 2, 1), ("norm",), ("relu",)]
            back = [("res", ngf_n * 2)] * self.n_blocks_local + [("convT", ngf_n), ("norm",), ("relu",)]
            if n == self.n_local_enhancers:
                back += [("pad", 3), ("conv", self.output_nc, 7, 1, 0), ("tanh",)]
            x_n = pyramid[self.n_local_enhancers - n]
            out = _run(_run(x_n, front, f"model{n}_1", self.norm, train, self.dtype) + out,
                       back, f"model{n}_2", self.norm, train, self.dtype)
        return out


class Encoder(nn.Module):
    """pix2pixHD feature encoder; the output is averaged over every instance of ``inst``."""
    output_nc: int = 3
    ngf: int = 32
    n_downsampling: int = 4
    norm: str = "batch"
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, image, inst, train: bool = False):
        _check_size(image, 2 ** self.n_downsampling, 2 ** self.n_downsampling, "Encoder")
        specs = _global_specs(self.output_nc, self.ngf, self.n_downsampling, 0)
        raw = _run(image, specs, "model", self.norm, train, self.dtype)
        self.sow("intermediates", "raw", raw)
        return instance_average(raw, inst)


def instance_average(features: jax.Array, inst: jax.Array) -> jax.Array:
    """Replace each feature by its mean over the pixels of the same instance id, per sample
    (pix2pixHD quirk 11). ``inst`` is (B, H, W, 1) integer ids."""
    def one(feat, ids):
        flat_ids = ids.reshape(-1)
        n = flat_ids.shape[0]
        _, segment = jnp.unique(flat_ids, return_inverse=True, size=n, fill_value=0)
        segment = segment.reshape(-1)
        flat = feat.reshape(n, -1)
        sums = jax.ops.segment_sum(flat, segment, num_segments=n)
        counts = jax.ops.segment_sum(jnp.ones((n,), flat.dtype), segment, num_segments=n)
        return (sums / jnp.maximum(counts, 1)[:, None])[segment].reshape(feat.shape)
    return jax.vmap(one)(features, inst)


def instance_edges(inst: jax.Array) -> jax.Array:
    """get_edges: 1 where a 4-neighbour has a different id (both sides of a boundary; the image
    border does not count). (B, H, W, 1) ids -> float32 map."""
    dx = inst[:, :, 1:] != inst[:, :, :-1]
    dy = inst[:, 1:] != inst[:, :-1]
    no = ((0, 0),) * 4
    pad = lambda a, axis, before, after: jnp.pad(a, no[:axis] + ((before, after),) + no[axis + 1:])  # noqa: E731
    edge = pad(dx, 2, 1, 0) | pad(dx, 2, 0, 1) | pad(dy, 1, 1, 0) | pad(dy, 1, 0, 1)
    return edge.astype(jnp.float32)
