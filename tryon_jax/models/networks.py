"""ACGPN's networks by their checkpoint names (G1, G2, U, G, D1, D2, D3, D, VGG19), built from
a ModelSpec: the one place that says which module each name is and what its variables are."""
import jax
import jax.numpy as jnp

from tryon_jax.models.acgpn import Refine, UnetMask
from tryon_jax.models.discriminator import MultiscaleDiscriminator
from tryon_jax.models.pix2pixhd import LocalEnhancer
from tryon_jax.models.spec import DEFAULT as DEFAULT_SPEC
from tryon_jax.models.spec import ModelSpec
from tryon_jax.models.vgg import VGG19

GENERATORS = ("G1", "G2", "U", "G")
DISCRIMINATORS = {"D1": 51, "D2": 38, "D3": 7, "D": 27}  # input channels (golden README 22)
INPUT_CHANNELS = {"G1": 37, "G2": 37, "G": 24, "VGG19": 3, **DISCRIMINATORS}  # U takes four inputs


def acgpn_module(name: str, dtype=None, spec: ModelSpec = DEFAULT_SPEC):
    """The Flax module of one ACGPN network, by its checkpoint name, shaped by ``spec``."""
    if name == "G" and spec.image_generator == "local_enhancer":
        return LocalEnhancer(3, ngf=spec.hd_ngf, n_blocks_global=spec.hd_n_blocks_global,
                             n_blocks_local=spec.hd_n_blocks_local, norm="instance", dtype=dtype)
    if name in ("G1", "G2", "G"):
        return Refine({"G1": 14, "G2": 1, "G": 3}[name], dtype=dtype, ngf=spec.ngf)
    if name == "U":
        return UnetMask(dtype=dtype, ngf=spec.ngf)
    if name in DISCRIMINATORS:
        return MultiscaleDiscriminator(num_d=spec.num_d, n_layers=spec.n_layers_d, ndf=spec.ndf, dtype=dtype)
    if name == "VGG19":
        return VGG19(dtype=dtype)
    raise ValueError(f"unknown ACGPN network {name!r}")


def variable_shapes(name: str, spec: ModelSpec = DEFAULT_SPEC):
    """Shapes of the Flax variables of one network (jax.eval_shape: nothing is computed). U's
    TPS buffer depends on the resolution; every other network is fully convolutional."""
    if name == "U":
        h, w = spec.height, spec.width
        args = (jnp.zeros((1, h, w, 3)), jnp.zeros((1, h, w, 1)), jnp.zeros((1, h, w, 1)), jnp.zeros((1, h, w, 3)))
    else:
        size = 64 if name == "G" and spec.image_generator == "local_enhancer" else 32
        args = (jnp.zeros((1, size, size, INPUT_CHANNELS[name])),)
    return jax.eval_shape(acgpn_module(name, spec=spec).init, jax.random.key(0), *args)
