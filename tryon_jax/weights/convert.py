"""Torch-keyed state dicts -> Flax variables, and a .pth reader that executes no pickle code.

Naming rule (one for every network): a torch key ``a.b.3.weight`` splits into the module
path ``a.b.3`` and the leaf ``weight``; each numeric segment joins the segment before it with
``_`` (``conv1.0`` -> ``conv1_0``, ``model.10.conv_block.1`` -> ``model_10/conv_block_1``).
Leaves: 4-D ``weight`` -> ``kernel`` transposed (2, 3, 1, 0) (OIHW -> HWIO; a ConvTranspose
(in, out, kh, kw) weight becomes (kh, kw, out, in), see layers.ConvTranspose), 2-D ``weight``
-> ``kernel`` transposed (Linear), 1-D ``weight`` -> ``scale`` (norm affine), ``bias`` ->
``bias``, ``running_mean``/``running_var`` -> ``batch_stats`` ``mean``/``var``; any other
leaf is a registered buffer and goes to the ``buffers`` collection under its own name.
"""
import functools
import os
import re
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from tryon_jax.models import tps
from tryon_jax.models.inception import InceptionV3
from tryon_jax.models.networks import DISCRIMINATORS, GENERATORS, variable_shapes  # noqa: F401  (public API)
from tryon_jax.weights.torch_pickle import CheckpointError, read_torch_checkpoint  # noqa: F401  (public API)

_BATCH_STATS = {"running_mean": "mean", "running_var": "var"}
_IGNORED_LEAVES = ("num_batches_tracked",)


def flax_path(torch_module_path: str) -> tuple[str, ...]:
    """``stn.loc_net.cnn.model.0`` -> ``('stn', 'loc_net', 'cnn', 'model_0')``."""
    out: list[str] = []
    merged = False
    for seg in torch_module_path.split("."):
        if seg.isdigit():
            if not out or merged:
                raise ValueError(f"cannot map torch module path {torch_module_path!r}")
            out[-1] = f"{out[-1]}_{seg}"
            merged = True
        else:
            out.append(seg)
            merged = False
    return tuple(out)


def torch_module_path(path: tuple[str, ...]) -> str:
    """Inverse of flax_path."""
    return ".".join(re.sub(r"_(\d+)$", r".\1", seg) for seg in path)


def _to_flax_leaf(leaf: str, value: np.ndarray) -> tuple[str, str, np.ndarray]:
    """(collection, flax leaf name, array in Flax layout) for one torch leaf."""
    if leaf in _BATCH_STATS:
        return "batch_stats", _BATCH_STATS[leaf], value
    if leaf == "bias":
        return "params", "bias", value
    if leaf == "weight":
        if value.ndim == 4:
            return "params", "kernel", value.transpose(2, 3, 1, 0)
        if value.ndim == 2:
            return "params", "kernel", value.T
        if value.ndim == 1:
            return "params", "scale", value
        raise ValueError(f"unsupported weight with shape {value.shape}")
    return "buffers", leaf, value


def _to_torch_leaf(collection: str, leaf: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    if collection == "batch_stats":
        return {v: k for k, v in _BATCH_STATS.items()}[leaf], shape
    if collection == "buffers":
        return leaf, shape
    if leaf == "kernel":
        if len(shape) == 4:
            h, w, i, o = shape
            return "weight", (o, i, h, w)
        return "weight", tuple(reversed(shape))
    return {"scale": "weight", "bias": "bias"}[leaf], shape


def torch_layout(template) -> dict[str, tuple[int, ...]]:
    """Torch state_dict keys and shapes that a Flax variables tree (or its shapes) expects."""
    out = {}
    for collection, tree in template.items():
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            names = tuple(k.key for k in path)
            name, shape = _to_torch_leaf(collection, names[-1], tuple(leaf.shape))
            out[f"{torch_module_path(names[:-1])}.{name}"] = shape
    return out


def torch_to_flax(state_dict: Mapping[str, np.ndarray], template=None, *, name: str = "network",
                  dtype=np.float32) -> dict:
    """Convert one torch-keyed state dict. With a template (the module's variables or their
    shapes), missing, unexpected and mis-shaped entries raise a ValueError naming them all.
    The check is made on Flax paths, so torch names like ``branch3x3dbl_1`` are fine."""
    variables: dict = {}
    origin: dict[tuple, tuple[str, tuple]] = {}  # Flax path -> (torch key, torch shape)
    for key, value in _strip_prefix(state_dict).items():
        module, _, leaf = key.rpartition(".")
        if leaf in _IGNORED_LEAVES:
            continue
        collection, flax_leaf, array = _to_flax_leaf(leaf, np.asarray(value))
        path = (collection,) + flax_path(module) + (flax_leaf,)
        node = variables
        for seg in path[:-1]:
            node = node.setdefault(seg, {})
        node[flax_leaf] = np.ascontiguousarray(array, dtype=dtype)
        origin[path] = (key, tuple(np.shape(value)))
    if template is not None:
        _check_against(template, variables, origin, name)
    return variables


def _paths(tree) -> dict[tuple, tuple]:
    return {tuple(k.key for k in p): tuple(np.shape(v)) for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _check_against(template, variables, origin, name):
    expected, given = _paths(template), _paths(variables)

    def torch_name(path):
        leaf, _ = _to_torch_leaf(path[0], path[-1], expected.get(path, ()))
        return f"{torch_module_path(path[1:-1])}.{leaf}"

    missing = sorted(torch_name(p) for p in set(expected) - set(given))
    unexpected = sorted(origin[p][0] for p in set(given) - set(expected))
    wrong = sorted(p for p in set(expected) & set(given) if expected[p] != given[p])
    if missing or unexpected or wrong:
        lines = [f"state dict for {name} does not fit the model:"]
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {', '.join(missing[:8])}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {', '.join(unexpected[:8])}")
        for p in wrong[:8]:
            key, shape = origin[p]
            want = _to_torch_leaf(p[0], p[-1], expected[p])[1]
            lines.append(f"  {key}: expected shape {want}, got {shape}")
        raise ValueError("\n".join(lines))


def flax_to_torch(variables) -> dict[str, np.ndarray]:
    """Inverse conversion (for exporting back to torch-keyed dicts and for tests). Torch module
    names that themselves end in ``_<digits>`` (torchvision's ``branch3x3dbl_1``) cannot be told
    from Sequential indices here; ACGPN's and pix2pixHD's names are unambiguous."""
    out = {}
    for collection, tree in variables.items():
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            names = tuple(k.key for k in path)
            leaf = np.asarray(leaf)
            name, _ = _to_torch_leaf(collection, names[-1], leaf.shape)
            if name == "weight" and leaf.ndim == 4:
                leaf = leaf.transpose(3, 2, 0, 1)
            elif name == "weight" and leaf.ndim == 2:
                leaf = leaf.T
            out[f"{torch_module_path(names[:-1])}.{name}"] = leaf
    return out


def _strip_prefix(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop a DataParallel ``module.`` prefix when every key has it."""
    keys = list(state_dict)
    if keys and all(k.startswith("module.") for k in keys):
        return {k[len("module."):]: v for k, v in state_dict.items()}
    return dict(state_dict)


# --- ACGPN ----------------------------------------------------------------------------------

_TPS_COMPUTED = ("stn.tps.padding_matrix", "stn.tps.target_coordinate_repr")


@functools.lru_cache(maxsize=None)
def template(name: str):
    """Shapes of the Flax variables of an ACGPN network at 256x192 (no computation)."""
    return variable_shapes(name)


def acgpn_layout(name: str) -> dict[str, tuple[int, ...]]:
    """Torch state_dict keys and shapes of an ACGPN network, including the TPS buffers of U."""
    layout = torch_layout(template(name))
    if name == "U":
        layout.update({_TPS_COMPUTED[0]: (3, 2), _TPS_COMPUTED[1]: tps.tps_buffers(256, 192)[1].shape})
    return layout


def _check_tps_buffers(state_dict: dict, name: str) -> dict:
    """U checkpoints carry TPSGridGen's buffers. inverse_kernel is used as stored (a float32
    inverse differs between LAPACK builds); the other two are recomputed, so only checked."""
    _, rep = tps.tps_buffers(256, 192)
    expected = {_TPS_COMPUTED[0]: np.zeros((3, 2), np.float32), _TPS_COMPUTED[1]: rep}
    if "stn.tps.inverse_kernel" not in state_dict:
        state_dict["stn.tps.inverse_kernel"] = tps.tps_buffers(256, 192)[0]
    for key, want in expected.items():
        if key in state_dict:
            got = np.asarray(state_dict.pop(key), np.float32)
            if got.shape != want.shape or not np.allclose(got, want, rtol=1e-3, atol=1e-3):
                raise ValueError(f"{name}: buffer {key} does not match the 256x192 TPS grid of ACGPN "
                                 f"(shape {got.shape}); is this an ACGPN U checkpoint?")
    return state_dict


def acgpn_variables(state_dicts: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict]:
    """{"U", "G1", "G2", "G" (, "D1", "D2", "D3", "D", "VGG19")} torch state dicts -> Flax
    variables per network. Shapes and names are checked against the models."""
    out = {}
    for name, state_dict in state_dicts.items():
        state_dict = _strip_prefix(state_dict)
        if name == "U":
            state_dict = _check_tps_buffers(dict(state_dict), name)
        if name == "VGG19":
            out[name] = vgg19_variables(state_dict)
            continue
        out[name] = torch_to_flax(state_dict, template(name), name=name)
    return out


def vgg19_variables(state_dict: Mapping[str, np.ndarray]) -> dict:
    """torchvision ``vgg19().state_dict()`` (``features.N.*``; the layers after relu5_1 and the
    classifier are ignored) or ACGPN's Vgg19 (``sliceK.N.*``) -> Flax variables of models.vgg.VGG19."""
    from tryon_jax.models.vgg import CONV_INDICES
    features = {}
    for key, value in _strip_prefix(state_dict).items():
        m = re.fullmatch(r"(?:features|slice\d)\.(\d+)\.(weight|bias)", key)
        if m:
            if int(m.group(1)) in CONV_INDICES:
                features[f"features.{m.group(1)}.{m.group(2)}"] = value
        elif not key.startswith("classifier."):
            raise ValueError(f"VGG19 state dict has an unexpected key {key!r}")
    return torch_to_flax(features, template("VGG19"), name="VGG19")


def load_acgpn_checkpoints(folder, names=("U", "G1", "G2", "G")) -> dict[str, dict]:
    """Load the released ACGPN weights ``latest_net_{U,G1,G2,G}.pth`` from a folder (e.g.
    ``checkpoints/label2city``) with the safe reader, and convert them."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"ACGPN checkpoint folder not found: {folder} (pass the folder that holds "
                                f"latest_net_U.pth, latest_net_G1.pth, latest_net_G2.pth and latest_net_G.pth)")
    state_dicts = {}
    for name in names:
        path = os.path.join(folder, f"latest_net_{name}.pth")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"missing {path}: the folder must hold latest_net_{name}.pth "
                                    f"(the released ACGPN label2city checkpoints)")
        obj = read_torch_checkpoint(path)
        state_dicts[name] = state_dict_of(obj, path)
    try:
        return acgpn_variables(state_dicts)
    except ValueError as e:
        raise ValueError(f"{folder}: {e}") from e


def state_dict_of(obj, path="checkpoint") -> dict[str, np.ndarray]:
    """The tensor dict inside a loaded checkpoint: the object itself, or its 'state_dict' /
    'model' / 'net' entry."""
    if isinstance(obj, dict) and obj and all(isinstance(v, np.ndarray) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "net", "model_state_dict"):
            if key in obj:
                return state_dict_of(obj[key], path)
    raise ValueError(f"{path}: no state_dict (a mapping of parameter names to tensors) found in the checkpoint")


# --- Inception v3 (torchvision) ---------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def inception_template():
    return jax.eval_shape(InceptionV3().init, jax.random.key(0), jnp.zeros((1, 299, 299, 3)))


def inception_variables(state_dict: Mapping[str, np.ndarray]) -> dict:
    """torchvision-keyed Inception v3 state dict -> Flax variables (AuxLogits keys ignored)."""
    kept = {k: v for k, v in _strip_prefix(state_dict).items() if not k.startswith("AuxLogits.")}
    return torch_to_flax(kept, inception_template(), name="Inception v3")


def inception_layout() -> dict[str, tuple[int, ...]]:
    """torchvision state_dict keys and shapes of Inception v3 (its names have no Sequential
    indices, so the Flax path joined with dots is the torch key)."""
    out = {}
    for collection, tree in inception_template().items():
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            names = tuple(k.key for k in path)
            name, shape = _to_torch_leaf(collection, names[-1], tuple(leaf.shape))
            out[".".join(names[:-1] + (name,))] = shape
    return out
