"""Parser training from packed shards held in accelerator memory.

A parser step takes about 8 ms on one H200 (benchmarks/parser.py), far less than the grain
pipeline needs to decode a batch, and an accelerator machine may not have the TFDS dataset.
``pack`` writes a split's encoded photos and label maps (as the TFDS records hold them, not
re-encoded), keypoints and a pool of garment photos (the clutter sources) into .npz shards of
bounded size (no pickle). ``train`` decodes the shards once, puts every example on the devices
(VITON train, 14221 persons: 2.8 GB as uint8) and draws each batch there; the step is
parser_train's (same losses, same on-device augmentation), so a config means the same here.

    python -m tryon_jax.person.training.parser_packed pack --data_dir=TFDS_DIR --out=PACK_DIR [--shard_mb=42]
    python -m tryon_jax.person.training.parser_packed train --pack=PACK_DIR --workdir=DIR [--variant=gpu]
        [--init_weights=parser.npz] [--max_minutes=6]

The run writes WORKDIR/parser.npz (+ .json), metrics.jsonl, TensorBoard events and a picture
of the last batch; evaluate it with ``python -m evaluation.parser_eval --weights=...``.
"""
import argparse
import io
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from PIL import Image
from tqdm import tqdm

from tryon_jax.core.mesh import make_mesh
from tryon_jax.core.metrics_log import MetricsLog, say
from tryon_jax.data import packed
from tryon_jax.person.training import parser_train

HINT = "pass --pack=the folder written by `python -m tryon_jax.person.training.parser_packed pack`"


def pack(data_dir: str, out: str, name: str = "viton/cpvton", split: str = "train", shard_mb: float = 42.0,
         cloth_pool: int = 2000) -> list[str]:
    """Writes PACK/shard_XXX.npz, each under ``shard_mb`` MB: persons (image, label, keypoints)
    and an equal part of the first ``cloth_pool`` garment photos. Returns the shard paths."""
    from tryon_jax.data import input_pipeline
    source = input_pipeline.data_source(name, split, data_dir)
    n = len(source)
    if not n:
        raise ValueError(f"{name}:{split} in {data_dir} is empty")
    records = []
    for i in tqdm(range(n), desc="reading records", unit="example"):
        ex = source[i]
        label = ex["label"]
        if not isinstance(label, bytes):  # a decoded label map: store it as PNG
            buf = io.BytesIO()
            Image.fromarray(np.asarray(label, np.uint8).reshape(np.shape(label)[:2])).save(buf, "PNG")
            label = buf.getvalue()
        records.append((ex["image"], label, ex["cloth"]["image"], np.asarray(ex["pose_keypoints"], np.float32)))
    pool = min(cloth_pool, n)
    total = sum(len(r[0]) + len(r[1]) for r in records) + sum(len(r[2]) for r in records[:pool])
    count = packed.shard_count(total, shard_mb)
    shards = [{"image": [records[i][0] for i in persons], "label": [records[i][1] for i in persons],
               "cloth": [records[i][2] for i in cloths], "keypoints": np.stack([records[i][3] for i in persons])}
              for persons, cloths in zip(np.array_split(np.arange(n), count), np.array_split(np.arange(pool), count))]
    return packed.write(out, shards, {"dataset": f"{name}:{split}", "examples": n, "cloth_pool": pool})


def load(pack_dir: str) -> dict:
    """All shards of a pack decoded: image (N, H, W, 3), label (N, H, W, 1), pose_keypoints
    (N, 18, 3) and the garment pool color (M, H, W, 3)."""
    meta, fields = packed.load(pack_dir, {"image": "RGB", "label": "L", "cloth": "RGB"}, HINT)
    data = {"image": fields["image"], "label": fields["label"][..., None], "pose_keypoints": fields["keypoints"],
            "color": fields["cloth"]}
    if len(data["image"]) != meta["examples"]:
        raise ValueError(f"{pack_dir}: {len(data['image'])} examples decoded, pack.json says {meta['examples']}")
    return data


def train_packed(config, pack_dir: str, workdir: str, max_minutes: float = 0.0) -> dict:
    """Trains config.parser for its num_steps on the packed split; stops early (and still saves)
    after ``max_minutes`` if given. Returns the saved weights' metadata."""
    pc = config.parser
    os.makedirs(workdir, exist_ok=True)
    started = time.perf_counter()
    data = load(pack_dir)
    mesh = make_mesh()
    if config.batch_size % jax.device_count():
        raise ValueError(f"batch_size {config.batch_size} must be a multiple of the {jax.device_count()} devices")
    cw = parser_train.class_weights([{"label": x} for x in data["label"][:pc.weight_examples]],
                                    pc.weight_examples, pc.weight_power, tuple(pc.weight_clip))
    n, num_steps = len(data["image"]), pc.num_steps or pc.num_epochs * (len(data["image"]) // config.batch_size)
    _, step_fn, _, state = parser_train.setup(config, num_steps)
    repl, batch_sh = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    state, cw, on_device = jax.device_put((state, jnp.asarray(cw), data), repl)

    def packed_step(state, data, index, cloth_index, cw):
        raw = {k: data[k][index] for k in ("image", "label", "pose_keypoints")}
        return step_fn(state, {**raw, "color": data["color"][cloth_index]}, cw)

    step = jax.jit(packed_step, in_shardings=(repl, repl, batch_sh, batch_sh, repl),
                   out_shardings=(repl, repl, repl), donate_argnums=(0,))
    persons = packed.EpochSampler(n, config.batch_size, config.seed)
    cloths = persons.rng  # one stream, as before: the cloth draws follow each permutation
    log = MetricsLog(workdir)
    say(f"parser (packed): {n} examples on {jax.device_count()} {jax.devices()[0].platform} devices, "
        f"{num_steps} steps of {config.batch_size}; loaded in {time.perf_counter() - started:.0f} s")

    def batch_args():
        index = persons.next()
        return on_device, index, cloths.integers(0, len(data["color"]), config.batch_size).astype(np.int32), cw

    state, done, preview = packed.train_resident(step, state, num_steps, batch_args, log, pc.log_every,
                                                 "parser (packed)", ("loss", "ce"), max_minutes, started)
    log.picture(done, "parser", parser_train._preview(preview))
    log.close()
    meta = parser_train.weights_meta(config, done, None, scheduled_steps=num_steps, trained_on=f"pack of {n}",
                                     batch_size=config.batch_size, seed=config.seed)
    parser_train.save_weights(os.path.join(workdir, "parser.npz"), jax.device_get(state.params), meta)
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tryon_jax.person.training.parser_packed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = packed.add_pack_command(sub, "persons, labels, keypoints and clutter garments", 42.0)
    p.add_argument("--cloth_pool", type=int, default=2000, help="garment photos kept as clutter sources")
    t = sub.add_parser("train", help="train the parser on a pack")
    t.add_argument("--pack", required=True)
    t.add_argument("--workdir", required=True)
    t.add_argument("--variant", default="gpu", help="configs/parser.py variant")
    t.add_argument("--init_weights", help="parser.npz to start from (overrides the config's)")
    t.add_argument("--num_steps", type=int, help="overrides the config's")
    t.add_argument("--max_minutes", type=float, default=0.0, help="stop (and save) after this long; 0: never")
    args = ap.parse_args(argv)
    try:
        if args.command == "pack":
            paths = pack(args.data_dir, args.out, args.name, args.split, args.shard_mb, args.cloth_pool)
            print(packed.sizes_mb(paths))
            return 0
        from configs.parser import get_config
        config = get_config(args.variant)
        if args.init_weights:
            config.parser.init_weights = args.init_weights
        if args.num_steps:
            config.parser.num_steps = args.num_steps
        meta = train_packed(config, args.pack, args.workdir, args.max_minutes)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: meta[k] for k in ("step", "scheduled_steps", "trained_on")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
