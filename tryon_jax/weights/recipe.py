"""Deterministic random weights (numpy only), the recipe shared with the golden references.

seed = crc32(salt + net + "/" + key); PCG64; he-normal for >= 2-D tensors, U(-0.1, 0.1) for
biases and running means, 1 + U(0, 0.2) for running variances, 1 + U(-0.1, 0.1) for 1-D
weights; drawn in float64 and rounded to float32. Used by tests and by the demo when no
trained checkpoint is given; never a substitute for trained weights.
"""
import zlib
from collections.abc import Iterable, Mapping

import numpy as np


def recipe_array(net: str, key: str, shape: Iterable[int], salt: str = "", transposed: bool = False,
                 scale: float = 1.0) -> np.ndarray:
    """One state_dict entry. ``transposed`` marks a ConvTranspose2d weight (in, out, kh, kw)
    whose fan-in uses the in dimension (pix2pixHD recipe); ``scale`` multiplies the float64 draw."""
    shape = tuple(int(s) for s in shape)
    if key.endswith("num_batches_tracked"):
        return np.zeros(shape, np.int64)
    rng = np.random.default_rng(zlib.crc32(f"{salt}{net}/{key}".encode()))
    if len(shape) >= 2:
        fan_in = shape[0] * int(np.prod(shape[2:])) if transposed else int(np.prod(shape[1:]))
        w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif key.endswith(".bias") or key.endswith("running_mean"):
        w = rng.uniform(-0.1, 0.1, shape)
    elif key.endswith("running_var"):
        w = 1 + rng.uniform(0.0, 0.2, shape)
    elif key.endswith(".weight"):
        w = 1 + rng.uniform(-0.1, 0.1, shape)
    else:
        raise ValueError(f"no recipe rule for {net}/{key}")
    return (w * scale).astype(np.float32)


def recipe_state_dict(net: str, layout: Mapping[str, Iterable[int]], salt: str = "",
                      transposed_keys: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """A whole state dict from {torch key: shape}."""
    transposed_keys = set(transposed_keys)
    return {k: recipe_array(net, k, s, salt, k in transposed_keys) for k, s in layout.items()}


def acgpn_state_dicts(names=("U", "G1", "G2", "G"), salt: str = "") -> dict[str, dict[str, np.ndarray]]:
    """Recipe state dicts of ACGPN networks, shaped like the original checkpoints, including the
    golden recipe's exceptions: fc2.bias = arctanh(target control points) (the original init),
    fc2.weight = 0.1 x its draw (the original zeros would make the loc-net ignore its input),
    and the TPS buffers."""
    from tryon_jax.models import tps
    from tryon_jax.weights import convert

    out = {}
    for name in names:
        layout = convert.acgpn_layout(name)
        for key in [k for k in layout if k.startswith("stn.tps.")]:
            del layout[key]
        sd = recipe_state_dict(name, layout, salt)
        if name == "U":
            sd["stn.loc_net.cnn.fc2.bias"] = np.arctanh(tps.target_control_points()).reshape(-1).astype(np.float32)
            sd["stn.loc_net.cnn.fc2.weight"] = recipe_array(name, "stn.loc_net.cnn.fc2.weight",
                                                            layout["stn.loc_net.cnn.fc2.weight"], salt, scale=0.1)
            inverse, rep = tps.tps_buffers(256, 192)
            sd.update({"stn.tps.inverse_kernel": inverse, "stn.tps.padding_matrix": np.zeros((3, 2), np.float32),
                       "stn.tps.target_coordinate_repr": rep})
        out[name] = sd
    return out
