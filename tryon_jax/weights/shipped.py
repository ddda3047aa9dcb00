"""Model folders, and the model the repository ships (tryon_jax/shipped/).

A model folder holds the four generators' parameters in float16, split into
``generators-XX.npz`` files of at most 15 MiB each (plain npz, no pickle), and ``model.json``:
the ModelSpec, each file's size and sha256, and the record of how the model was trained and
how it scores. U's TPS buffer is not stored: it follows from the resolution. Loading casts
the parameters back to float32, so a loaded model computes exactly what the float16 weights
cast to float32 compute. ``python -m tryon_jax.acgpn.train_packed train`` writes such a folder;
the one committed under tryon_jax/shipped/ is what the command-line tools and the service use
when no weights are named.
"""
import hashlib
import json
import os
from pathlib import Path

import jax
import numpy as np

from tryon_jax.core import files
from tryon_jax.models import networks, tps
from tryon_jax.models.spec import ModelSpec
from tryon_jax.weights.params_io import flatten, unflatten

SHIPPED = Path(__file__).resolve().parents[1] / "shipped"
MODEL_FILE = "model.json"
FORMAT = "tryon-jax model folder 1"
MAX_PART_BYTES = 15 * 2 ** 20
_HINT = ("name weights instead: --model DIR (a model folder), --workdir DIR (a training run), "
         "--acgpn-checkpoints DIR (the released .pth files), --params FILE (an export) or --recipe-weights "
         "(random weights)")


class NoShippedModel(FileNotFoundError):
    """No model.json where a model folder was expected."""


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _parts(flat: dict, max_bytes: int) -> list[dict]:
    """Arrays in key order, grouped into parts of at most ``max_bytes`` of data (+ npz headers)."""
    parts, current, size = [], {}, 0
    for key in sorted(flat):
        n = flat[key].nbytes + 512  # an npz member's headers are well under 512 bytes
        if n > max_bytes:
            raise ValueError(f"{key}: {flat[key].nbytes} bytes, more than one weights file may hold ({max_bytes})")
        if size + n > max_bytes:
            parts.append(current)
            current, size = {}, 0
        current[key] = flat[key]
        size += n
    return parts + [current] if current else parts


def write_model(out: str, generators: dict, spec: ModelSpec, record: dict | None = None,
                max_part_bytes: int = MAX_PART_BYTES) -> list[str]:
    """Writes the generators' ``params`` (G1, G2, U, G) as float16 parts and model.json (last,
    so a folder with a model.json is complete); returns the weight files' paths."""
    flat = {k: np.asarray(v, np.float16) for k, v in flatten({n: generators[n]["params"] for n in
                                                                   networks.GENERATORS}).items()}
    bad = [k for k, v in flat.items() if not np.all(np.isfinite(v))]
    if bad:
        raise ValueError(f"parameters not finite in float16: {bad[:4]}")
    os.makedirs(out, exist_ok=True)
    entries, paths = [], []
    for i, part in enumerate(_parts(flat, max_part_bytes)):
        path = os.path.join(out, f"generators-{i:02d}.npz")
        with files.atomic_write(path) as f:
            np.savez(f, **part)
        entries.append({"file": os.path.basename(path), "bytes": os.path.getsize(path), "sha256": _sha256(path)})
        paths.append(path)
    meta = {"format": FORMAT, "model_spec": json.loads(spec.to_json()), "dtype": "float16", "weights": entries,
            "parameters": int(sum(v.size for v in flat.values())), **(record or {})}
    with files.atomic_write(os.path.join(out, MODEL_FILE), "w") as f:
        json.dump(meta, f, indent=1)
    return paths


def as_shipped(generators: dict) -> dict:
    """The generators as a model folder gives them back: parameters rounded to float16 and cast
    back to float32 (buffers as they are)."""
    return {n: {**v, "params": jax.tree.map(lambda x: np.asarray(np.asarray(x, np.float16), np.float32), v["params"])}
            for n, v in generators.items()}


def read_meta(folder: str | os.PathLike | None = None) -> dict:
    """model.json of a model folder (default: the shipped one)."""
    folder = Path(folder) if folder else SHIPPED
    path = folder / MODEL_FILE
    if not path.is_file():
        if folder == SHIPPED:
            raise NoShippedModel(f"no trained model is shipped with this checkout ({path} is missing); {_HINT}")
        raise NoShippedModel(f"{path} not found: not a model folder (python -m tryon_jax.acgpn.train_packed "
                             f"writes one); {_HINT}")
    try:
        meta = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if meta.get("format") != FORMAT or not isinstance(meta.get("weights"), list):
        raise ValueError(f"{path}: not a {FORMAT!r} file")
    return meta


def load_model(folder: str | os.PathLike | None = None) -> tuple[dict, ModelSpec, dict]:
    """(float32 variables of G1, G2, U, G, their ModelSpec, model.json) of a model folder
    (default: the shipped one). Every file is checked: present, its sha256, its arrays' names,
    shapes and finiteness; a problem raises an error that names the file."""
    folder = Path(folder) if folder else SHIPPED
    meta = read_meta(folder)
    try:
        spec = ModelSpec.from_dict(meta["model_spec"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{folder / MODEL_FILE}: bad model_spec ({e})") from e
    flat = {}
    for entry in meta["weights"]:
        path = folder / str(entry.get("file", ""))
        if not path.is_file():
            raise FileNotFoundError(f"{path}: weights file listed in {MODEL_FILE} is missing")
        if _sha256(str(path)) != entry.get("sha256"):
            raise ValueError(f"{path}: sha256 differs from {MODEL_FILE} (truncated or replaced file)")
        try:
            with np.load(path, allow_pickle=False) as z:
                flat.update({k: np.asarray(z[k]) for k in z.files})
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not an npz weights file ({e})") from e
    params = unflatten({k: v.astype(np.float32) for k, v in flat.items()})
    variables = {}
    for name in networks.GENERATORS:
        want = jax.tree.map(lambda s: tuple(s.shape), networks.variable_shapes(name, spec)["params"])
        got = jax.tree.map(np.shape, params.get(name, {}))
        if got != want:
            raise ValueError(f"{folder}: the weights of {name} do not fit the model_spec of {MODEL_FILE}")
        variables[name] = {"params": params[name]}
    if not all(np.all(np.isfinite(v)) for v in flat.values()):
        raise ValueError(f"{folder}: weights are not finite")
    variables["U"]["buffers"] = {"stn": {"tps": {"inverse_kernel": tps.tps_buffers(spec.height, spec.width)[0]}}}
    return variables, spec, meta
