"""The weights contract's import path (DESIGN.md): ``tryon_jax.convert.acgpn_variables``,
``read_torch_checkpoint``, ``vgg19_variables`` and ``inception_variables``. The code lives in
tryon_jax.weights.convert and tryon_jax.weights.torch_pickle."""
from tryon_jax.weights.convert import (  # noqa: F401
    GENERATORS,
    acgpn_variables,
    flax_to_torch,
    inception_variables,
    load_acgpn_checkpoints,
    state_dict_of,
    torch_to_flax,
    vgg19_variables,
)
from tryon_jax.weights.torch_pickle import CheckpointError, read_torch_checkpoint  # noqa: F401
