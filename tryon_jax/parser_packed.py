"""Parser training from packed shards held in accelerator memory.

A parser step takes about 8 ms on one H200 (benchmarks/parser.py), far less than the grain
pipeline needs to decode a batch, and an accelerator machine may not have the TFDS dataset.
``pack`` writes a split's encoded photos and label maps (as the TFDS records hold them, not
re-encoded), keypoints and a pool of garment photos (the clutter sources) into .npz shards of
bounded size (no pickle). ``train`` decodes the shards once, puts every example on the devices
(VITON train, 14221 persons: 2.8 GB as uint8) and draws each batch there; the step is
parser_train's (same losses, same on-device augmentation), so a config means the same here.

    python -m tryon_jax.parser_packed pack --data_dir=TFDS_DIR --out=PACK_DIR [--shard_mb=42]
    python -m tryon_jax.parser_packed train --pack=PACK_DIR --workdir=DIR [--variant=gpu]
        [--init_weights=parser.npz] [--max_minutes=6]

The run writes WORKDIR/parser.npz (+ .json), metrics.jsonl, TensorBoard events and a picture
of the last batch; evaluate it with ``python -m evaluation.parser_eval --weights=...``.
"""
import argparse
import io as _io
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from PIL import Image
from tqdm import tqdm

from tryon_jax import io, parser_train, train
from tryon_jax.metrics_log import MetricsLog


def _concat(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    return np.frombuffer(b"".join(blobs), np.uint8), offsets


def pack(data_dir: str, out: str, name: str = "viton/cpvton", split: str = "train", shard_mb: float = 42.0,
         cloth_pool: int = 2000) -> list[str]:
    """Writes PACK/shard_XXX.npz, each under ``shard_mb`` MB: persons (image, label, keypoints)
    and an equal part of the first ``cloth_pool`` garment photos. Returns the shard paths."""
    from tryon_jax import input_pipeline
    source = input_pipeline.data_source(name, split, data_dir)
    n = len(source)
    if not n:
        raise ValueError(f"{name}:{split} in {data_dir} is empty")
    records = []
    for i in tqdm(range(n), desc="reading records", unit="example"):
        ex = source[i]
        label = ex["label"]
        if not isinstance(label, bytes):  # a decoded label map: store it as PNG
            buf = _io.BytesIO()
            Image.fromarray(np.asarray(label, np.uint8).reshape(np.shape(label)[:2])).save(buf, "PNG")
            label = buf.getvalue()
        records.append((ex["image"], label, ex["cloth"]["image"], np.asarray(ex["pose_keypoints"], np.float32)))
    total = sum(len(r[0]) + len(r[1]) for r in records) + sum(len(r[2]) for r in records[:cloth_pool])
    shards = max(1, math.ceil(total / (shard_mb * 1e6 * 0.97)))
    os.makedirs(out, exist_ok=True)
    paths = []
    for s, (persons, cloths) in enumerate(zip(np.array_split(np.arange(n), shards),
                                              np.array_split(np.arange(min(cloth_pool, n)), shards))):
        arrays = {"keypoints": np.stack([records[i][3] for i in persons])}
        for field, k, idx in (("image", 0, persons), ("label", 1, persons), ("cloth", 2, cloths)):
            arrays[f"{field}_bytes"], arrays[f"{field}_offsets"] = _concat([records[i][k] for i in idx])
        path = os.path.join(out, f"shard_{s:03d}.npz")
        with io.atomic_write(path) as f:
            np.savez(f, **arrays)
        paths.append(path)
    with io.atomic_write(os.path.join(out, "pack.json"), "w") as f:
        json.dump({"dataset": f"{name}:{split}", "examples": n, "cloth_pool": min(cloth_pool, n),
                   "shards": [os.path.basename(p) for p in paths]}, f, indent=1)
    return paths


def _decode_all(blobs: np.ndarray, offsets: np.ndarray, mode: str, what: str) -> np.ndarray:
    def one(i):
        try:
            return np.asarray(Image.open(_io.BytesIO(blobs[offsets[i]:offsets[i + 1]].tobytes())).convert(mode))
        except OSError as e:
            raise ValueError(f"{what} #{i}: undecodable ({e})") from e
    with ThreadPoolExecutor(min(32, os.cpu_count() or 1)) as pool:
        return np.stack(list(pool.map(one, range(len(offsets) - 1))))


def load(pack_dir: str) -> dict:
    """All shards of a pack decoded: image (N, H, W, 3), label (N, H, W, 1), pose_keypoints
    (N, 18, 3) and the garment pool color (M, H, W, 3)."""
    meta_path = Path(pack_dir) / "pack.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: pass --pack=the folder written by `parser_packed pack`")
    meta = json.loads(meta_path.read_text())
    parts = {"image": [], "label": [], "pose_keypoints": [], "color": []}
    for name in meta["shards"]:
        path = Path(pack_dir) / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: shard missing from the pack ({len(meta['shards'])} shards listed)")
        with np.load(path, allow_pickle=False) as z:
            parts["image"].append(_decode_all(z["image_bytes"], z["image_offsets"], "RGB", f"{path} image"))
            parts["label"].append(_decode_all(z["label_bytes"], z["label_offsets"], "L", f"{path} label")[..., None])
            parts["color"].append(_decode_all(z["cloth_bytes"], z["cloth_offsets"], "RGB", f"{path} cloth"))
            parts["pose_keypoints"].append(np.asarray(z["keypoints"], np.float32))
    data = {k: np.concatenate(v) for k, v in parts.items()}
    if len(data["image"]) != meta["examples"]:
        raise ValueError(f"{pack_dir}: {len(data['image'])} examples decoded, pack.json says {meta['examples']}")
    return data


def train_packed(config, pack_dir: str, workdir: str, max_minutes: float = 0.0) -> dict:
    """Trains config.parser for its num_steps on the packed split; stops early (and still saves)
    after ``max_minutes`` if given. Returns the saved weights' metadata."""
    pc = config.parser
    os.makedirs(workdir, exist_ok=True)
    t_start = time.perf_counter()
    data = load(pack_dir)
    mesh = train.make_mesh()
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
    rng = np.random.default_rng(config.seed)
    order, at = rng.permutation(n), 0
    log = MetricsLog(workdir)
    train._say(f"parser (packed): {n} examples on {jax.device_count()} {jax.devices()[0].platform} devices, "
               f"{num_steps} steps of {config.batch_size}; loaded in {time.perf_counter() - t_start:.0f} s")
    done, preview, t0, n0 = 0, None, time.perf_counter(), 0
    with tqdm(total=num_steps, desc="parser", unit="step", disable=jax.process_index() != 0) as bar:
        for done in range(1, num_steps + 1):
            if at + config.batch_size > n:
                order, at = rng.permutation(n), 0
            index, at = order[at:at + config.batch_size], at + config.batch_size
            cloth = rng.integers(0, len(data["color"]), config.batch_size)
            state, metrics, preview = step(state, on_device, index.astype(np.int32), cloth.astype(np.int32), cw)
            late = max_minutes and time.perf_counter() - t_start > 60 * max_minutes
            if done % pc.log_every == 0 or done == num_steps or late:
                metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                if not all(math.isfinite(v) for v in metrics.values()):
                    raise FloatingPointError(f"step {done}: non-finite metrics {metrics}")
                rate = (done - n0) / (time.perf_counter() - t0)
                log.scalars(done, {**metrics, "steps_per_second": rate})
                bar.set_postfix(loss=f"{metrics['loss']:.3f}", ce=f"{metrics['ce']:.3f}", step_s=f"{rate:.1f}")
                t0, n0 = time.perf_counter(), done
            bar.update(1)
            if late:
                train._say(f"parser (packed): stopping at step {done} of {num_steps} after {max_minutes} min")
                break
    log.picture(done, "parser", parser_train._preview(preview))
    log.close()
    meta = parser_train.weights_meta(config, done, None, scheduled_steps=num_steps, trained_on=f"pack of {n}",
                                     batch_size=config.batch_size, seed=config.seed)
    parser_train.save_weights(os.path.join(workdir, "parser.npz"), jax.device_get(state.params), meta)
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tryon_jax.parser_packed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="write a TFDS split as shards")
    p.add_argument("--data_dir", required=True, help="TFDS data_dir holding the dataset")
    p.add_argument("--out", required=True)
    p.add_argument("--name", default="viton/cpvton")
    p.add_argument("--split", default="train")
    p.add_argument("--shard_mb", type=float, default=42.0)
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
            print(json.dumps({p: round(os.path.getsize(p) / 1e6, 1) for p in paths}, indent=1))
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
