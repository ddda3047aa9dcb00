"""Plain parameter files: nested dicts of arrays as an .npz with '/'-joined keys (no pickle),
with a JSON metadata entry. Numpy only, so serving can read them without the model code."""
import json
import os

import numpy as np

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
    from tryon_jax.core.files import atomic_write
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
