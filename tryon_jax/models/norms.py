"""The norm layers of pix2pixHD's get_norm_layer: 'instance' (affine=False, no running stats) or
'batch' (affine, running statistics in the batch_stats collection)."""
import flax.linen as nn

from tryon_jax.models import layers


def norm(kind: str, name: str, train: bool):
    if kind == "instance":
        return layers.instance_norm
    if kind == "batch":
        # torch momentum 0.1 == flax momentum 0.9; eps 1e-5 as torch.
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=layers.EPS, name=name)
    raise ValueError(f"norm must be 'instance' or 'batch', got {kind!r}")
