"""Where ACGPN weights come from: the released .pth files, an exported params file, or the
deterministic recipe (random, for demos and tests)."""
import functools
import json
import os

import numpy as np

from tryon_jax import convert, recipe
from tryon_jax.models.spec import ModelSpec

PARAMS_FILE = "params.npz"


def flatten(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        key = f"{prefix}/{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flatten(v, key))
        else:
            out[key] = np.asarray(v)
    return out


def unflatten(flat: dict) -> dict:
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        *path, leaf = key.split("/")
        for seg in path:
            node = node.setdefault(seg, {})
        node[leaf] = value
    return tree


def save_params(path: str, variables: dict, metadata: dict | None = None) -> None:
    """Variables as a plain .npz (no pickle) with '/'-joined keys, plus metadata JSON."""
    from tryon_jax.io import atomic_write
    flat = flatten(variables)
    flat["__metadata__"] = np.frombuffer(json.dumps(metadata or {}).encode(), np.uint8)
    with atomic_write(path) as f:
        np.savez(f, **flat)


def load_params(path: str) -> tuple[dict, dict]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"params file not found: {path} (write one with python -m tryon_jax.export)")
    try:
        with np.load(path, allow_pickle=False) as data:
            flat = {k: data[k] for k in data.files}
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not a params .npz file ({e})") from e
    meta = json.loads(flat.pop("__metadata__", np.zeros(0, np.uint8)).tobytes() or b"{}")
    return unflatten(flat), meta


@functools.lru_cache(maxsize=2)
def recipe_variables(salt: str = "") -> dict:
    """Random ACGPN weights from the golden recipe: shows the pipeline runs, not a try-on."""
    return convert.acgpn_variables(recipe.acgpn_state_dicts(salt=salt))


def load_variables(acgpn_checkpoints: str | None = None, params: str | None = None,
                   use_recipe: bool = False, workdir: str | None = None) -> tuple[dict, str, ModelSpec]:
    """(variables, description, model spec) from exactly one source."""
    given = [x for x in (acgpn_checkpoints, params, workdir) if x] + (["recipe"] if use_recipe else [])
    if len(given) != 1:
        raise ValueError("give exactly one weights source: --workdir DIR (the latest training checkpoint), "
                         "--acgpn-checkpoints DIR (folder with the released latest_net_{U,G1,G2,G}.pth), "
                         "--params FILE (from python -m tryon_jax.export) or --recipe-weights (random weights, "
                         "for a demo)")
    if workdir:
        from tryon_jax import checkpoint
        steps = checkpoint.steps(workdir)
        if not steps:
            raise FileNotFoundError(f"no training checkpoint in {checkpoint.checkpoint_dir(workdir)} "
                                    "(train first: python main.py --config=... --workdir=DIR)")
        return (checkpoint.restore_generators(workdir, steps[-1]), f"step {steps[-1]} of {workdir}",
                checkpoint.read_spec(workdir))
    if acgpn_checkpoints:
        return (convert.load_acgpn_checkpoints(acgpn_checkpoints), f"ACGPN checkpoints in {acgpn_checkpoints}",
                ModelSpec())
    if params:
        variables, meta = load_params(params)
        missing = [n for n in convert.GENERATORS if n not in variables]
        if missing:
            raise ValueError(f"{params}: missing networks {missing}")
        return variables, f"params {params}", ModelSpec.from_dict(meta.get("model_spec", {}))
    return recipe_variables(), "random recipe weights (not trained: the images show noise)", ModelSpec()


def add_arguments(parser) -> None:
    """The weights-source flags shared by the command-line tools."""
    group = parser.add_argument_group("weights (exactly one)")
    group.add_argument("--workdir", help="training workdir: its latest checkpoint")
    group.add_argument("--acgpn-checkpoints", help="folder with the released latest_net_{U,G1,G2,G}.pth")
    group.add_argument("--params", help="params.npz written by python -m tryon_jax.export")
    group.add_argument("--recipe-weights", action="store_true", help="random recipe weights (demo and tests only)")


def from_args(args) -> tuple[dict, str, ModelSpec]:
    return load_variables(args.acgpn_checkpoints, args.params, args.recipe_weights, args.workdir)
