"""The serving artefact of ``python -m tryon_jax.export``, read without the model or training
code: OUT/tryon.jaxexport (a serialized jax.export.Exported with a symbolic batch size),
OUT/params.npz (its variables) and OUT/export.json (inputs, outputs, model spec)."""
import json
import os

import jax

from tryon_jax.weights import params_io

EXPORT_FILE = "tryon.jaxexport"
META_FILE = "export.json"
OUTPUTS = ("fake_image", "warped", "warped_mask", "fake_c", "fake_cl_dis", "armlabel_map", "changed")
IMAGE_CHANNELS = {"label": 1, "image": 3, "edge": 1, "color": 3}


def load_exported(out_dir: str) -> tuple[jax.export.Exported, dict, dict]:
    """(the deserialized function, its variables, export.json) of an export folder."""
    hint = f"write it with python -m tryon_jax.export --out={out_dir} (and --workdir or --acgpn-checkpoints)"
    path, meta_path = os.path.join(out_dir, EXPORT_FILE), os.path.join(out_dir, META_FILE)
    for p in (path, meta_path):
        if not os.path.isfile(p):
            raise FileNotFoundError(f"{p} not found: {hint}")
    with open(path, "rb") as f:
        try:
            exported = jax.export.deserialize(bytearray(f.read()))
        except Exception as e:  # flatbuffer / version errors
            raise ValueError(f"{path}: not a jax.export artefact this JAX can read ({e}); {hint}") from e
    with open(meta_path) as f:
        meta = json.load(f)
    variables, _ = params_io.load_params(os.path.join(out_dir, params_io.PARAMS_FILE))
    return exported, variables, meta


def load(out_dir: str):
    """Returns ``call(batch, key_data) -> outputs`` from an export folder."""
    exported, variables, _ = load_exported(out_dir)
    return lambda batch, key_data: exported.call(variables, batch, key_data)
