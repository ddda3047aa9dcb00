"""Export for serving: the variables as a plain .npz and the try-on function as a serialized
``jax.export`` artefact with a symbolic batch size.

    python -m tryon_jax.export --acgpn-checkpoints=DIR --out=OUT [--platforms=cpu,cuda]

OUT/params.npz      variables, '/'-joined keys, no pickle (sources.load_params)
OUT/tryon.jaxexport serialized jax.export.Exported: f(variables, raw, key_data) -> outputs
OUT/export.json     input and output names, shapes and the JAX version
Serving needs neither the model code nor the training code: ``tryon_jax.serving.exported.load(OUT)``
gives a callable.
"""
import argparse
import dataclasses
import functools
import hashlib
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from tryon_jax.acgpn import batches, inference
from tryon_jax.core import files
from tryon_jax.data import loader_ops
from tryon_jax.data.samples import HEIGHT, NUM_KEYPOINTS, WIDTH
from tryon_jax.models.spec import ModelSpec
from tryon_jax.serving.exported import EXPORT_FILE, IMAGE_CHANNELS, META_FILE, OUTPUTS, load, load_exported  # noqa: F401
from tryon_jax.weights import shipped, sources


def serving_fn(variables, raw, key_data, spec: ModelSpec = ModelSpec()):
    """Try-on for serving from decoded inputs (data.samples.load_raw: uint8 images, int32 pose boxes);
    ``key_data`` is (B, 2) uint32 raw threefry keys, one per example. Outputs are at the
    model's resolution (``spec``)."""
    keys = jax.random.wrap_key_data(key_data, impl="threefry2x32")
    batch = batches.resize(loader_ops.prepare(raw), spec.height, spec.width)
    out = inference.tryon_graph(variables, batch, keys, spec=spec)
    return {k: out[k] for k in OUTPUTS}


def export(variables: dict, platforms=("cpu",), spec: ModelSpec = ModelSpec()) -> jax.export.Exported:
    (b,) = jax.export.symbolic_shape("b")
    batch = {k: jax.ShapeDtypeStruct((b, HEIGHT, WIDTH, c), jnp.uint8) for k, c in IMAGE_CHANNELS.items()}
    batch["pose_boxes"] = jax.ShapeDtypeStruct((b, NUM_KEYPOINTS, 4), jnp.int32)
    var_spec = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.asarray(a).dtype), variables)
    key_spec = jax.ShapeDtypeStruct((b, 2), jnp.uint32)
    fn = jax.jit(functools.partial(serving_fn, spec=spec))
    return jax.export.export(fn, platforms=tuple(platforms))(var_spec, batch, key_spec)


def write(variables: dict, out_dir: str, platforms=("cpu",), source: str = "", spec: ModelSpec = ModelSpec()) -> str:
    exported = export(variables, platforms, spec)
    os.makedirs(out_dir, exist_ok=True)
    sources.save_params(os.path.join(out_dir, sources.PARAMS_FILE), variables,
                        {"source": source, "model_spec": dataclasses.asdict(spec)})
    with files.atomic_write(os.path.join(out_dir, EXPORT_FILE)) as f:
        f.write(exported.serialize())
    inputs = {k: ["b", HEIGHT, WIDTH, c, "uint8"] for k, c in IMAGE_CHANNELS.items()}
    inputs["pose_boxes"] = ["b", NUM_KEYPOINTS, 4, "int32"]
    meta = {"inputs": inputs, "key_data": ["b", 2, "uint32"], "outputs": list(OUTPUTS),
            "output_size": [spec.height, spec.width], "model_spec": dataclasses.asdict(spec),
            "platforms": list(platforms), "jax_version": jax.__version__, "weights": source,
            "notes": "inputs as tryon_jax.data.samples.load_raw decodes them (label: class ids 0..13, edge: the "
                     "cloth mask as grey levels, pose_boxes: loader_ops.pose_boxes of the 18 keypoints); "
                     "outputs in [-1, 1] (images) or {0, 1} / class ids (maps)"}
    with files.atomic_write(os.path.join(out_dir, META_FILE), "w") as f:
        json.dump(meta, f, indent=1)
    return out_dir


def model_export(cache_root: str, model: str | None = None) -> str:
    """The export of the shipped model (or of the model folder ``model``) for this machine's
    platform, written once into CACHE_ROOT/<the model's id>/; returns that folder."""
    meta_path = os.path.join(model or str(shipped.SHIPPED), shipped.MODEL_FILE)
    variables, spec, _ = shipped.load_model(model)
    with open(meta_path, "rb") as f:
        model_id = hashlib.sha256(f.read()).hexdigest()[:16]  # model.json holds every weight file's sha256
    out = os.path.join(cache_root, f"{model_id}-{jax.default_backend()}")
    if not os.path.isfile(os.path.join(out, META_FILE)):
        write(variables, out, (jax.default_backend(),), model or "the shipped model", spec)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tryon_jax.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sources.add_arguments(parser)
    parser.add_argument("--out", required=True)
    parser.add_argument("--platforms", default="cpu,cuda", help="comma-separated: cpu, cuda, rocm, tpu")
    args = parser.parse_args(argv)
    try:
        variables, source, spec = sources.from_args(args)
        write(variables, args.out, args.platforms.split(","), source, spec)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/{sources.PARAMS_FILE}, {EXPORT_FILE} and {META_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
