"""ACGPN training from packed VITON held in device memory: the command for a short
accelerator window (no TFDS or grain needed there).

    python -m tryon_jax.acgpn.train_packed pack --data_dir=TFDS --split=train --out=PACK/train
    python -m tryon_jax.acgpn.train_packed pack --data_dir=TFDS --split=test --out=PACK/test
    python -m tryon_jax.acgpn.train_packed train --pack=PACK/train --test_pack=PACK/test \\
        --config=configs/compact.py --out=OUT --max_minutes=8 [--set train.lr=1e-4 ...] [--init_model=DIR]

``pack`` writes a VITON TFDS split (``--name``, default viton/cpvton; or Dress Code's, e.g.
``dress_code/lower_body`` with configs/dresscode_lower.py) as .npz shards of at most
``--shard_mb`` MB: each person's own JPEG and label PNG, the cloth JPEG of the paired (and,
for test, the official unpaired) cloth as the records hold them, the pose as the loader's
integer boxes, difficulty and ids. Cloth masks go in as 1-bit PNGs of mask >= 128: the model
only ever sees the loader's ``edge > 0.5``, which they reproduce exactly at 256x192, at a
seventh of the JPEG bytes.

``train`` decodes the packs once, puts the train split on every device and draws each batch
there by index, with acgpn.train_step's step (the losses, augmentation and loader ops of
``main.py --config=configs/viton.py``). It stops after ``--max_minutes`` (or the config's
steps) and still writes OUT: the generators in float16 as files of at most 15 MiB and
model.json (weights.shipped's model folder: spec, steps, epochs, hardware, minutes, and paired
SSIM / MS-SSIM on every pair of the test pack, computed on the device), metrics.jsonl,
TensorBoard events, samples/train_*.png and samples/unpaired_test.png (8 unpaired test try-ons).
"""
import argparse
import ast
import importlib.util
import io
import json
import os
import sys
import time

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from PIL import Image
from tqdm import tqdm

from tryon_jax.acgpn import quality, train, train_step
from tryon_jax.core import files
from tryon_jax.core.mesh import make_mesh, state_shardings
from tryon_jax.core.metrics_log import MetricsLog, say
from tryon_jax.data import loader_ops, packed, samples
from tryon_jax.models.spec import ModelSpec
from tryon_jax.weights import shipped

HINT = "pass the folder written by `python -m tryon_jax.acgpn.train_packed pack`"
IMAGES = {"image": "RGB", "label": "L", "color": "RGB", "edge": "L", "unpaired_color": "RGB", "unpaired_edge": "L"}
UNPAIRED_VIEW = 8  # unpaired test try-ons in the picture


def _png(array: np.ndarray, bits: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).convert(bits).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def binary_mask_png(encoded: bytes) -> bytes:
    """A cloth mask as the 1-bit PNG of mask >= 128 (decodes to 0 / 255)."""
    mask = np.asarray(Image.open(io.BytesIO(encoded)).convert("L")) >= 128
    return _png(mask, "1")


def pack(data_dir: str, out: str, split: str, name: str = "viton/cpvton", shard_mb: float = 40.0) -> list[str]:
    """Writes a VITON TFDS split as shards of at most ``shard_mb`` MB; returns their paths."""
    from tryon_jax.data import input_pipeline
    source = input_pipeline.data_source(name, split, data_dir)
    if not len(source):
        raise ValueError(f"{name}:{split} in {data_dir} is empty")
    records = []
    for i in tqdm(range(len(source)), desc=f"reading {name}:{split}", unit="example"):
        ex = source[i]
        label = ex["label"]
        if not isinstance(label, bytes):
            label = _png(np.asarray(label, np.uint8).reshape(np.shape(label)[:2]))
        record = {"image": ex["image"], "label": label, "color": ex["cloth"]["image"],
                  "edge": binary_mask_png(ex["cloth"]["mask"]), "unpaired_color": ex["unpaired_cloth"]["image"],
                  "unpaired_edge": binary_mask_png(ex["unpaired_cloth"]["mask"]),
                  "pose_boxes": loader_ops.pose_boxes(ex["pose_keypoints"]), "difficulty": int(ex["difficulty"]),
                  "person_id": ex["person_id"], "cloth_id": ex["cloth"]["id"],
                  "unpaired_cloth_id": ex["unpaired_cloth"]["id"]}
        records.append({k: v.decode() if isinstance(v, bytes) and k.endswith("_id") else v for k, v in record.items()})
    if all(r["cloth_id"] == r["unpaired_cloth_id"] for r in records):  # train: the list is paired
        for r in records:
            del r["unpaired_color"], r["unpaired_edge"]
    encoded = [k for k in IMAGES if k in records[0]]
    total = sum(len(r[k]) for r in records for k in encoded)
    shards = []
    for part in np.array_split(np.arange(len(records)), packed.shard_count(total, shard_mb)):
        rs = [records[i] for i in part]
        shard = {k: [r[k] for r in rs] for k in encoded}
        shard["pose_boxes"] = np.stack([r["pose_boxes"] for r in rs]).astype(np.int32)
        shard["difficulty"] = np.array([r["difficulty"] for r in rs], np.int8)
        for k in ("person_id", "cloth_id", "unpaired_cloth_id"):
            shard[k] = np.array([r[k] for r in rs])
        shards.append(shard)
    return packed.write(out, shards, {"dataset": f"{name}:{split}", "examples": len(records), "cloth_masks":
                                      "1-bit PNG of mask >= 128"})


def load(pack_dir: str) -> dict:
    """A pack decoded: image, label (N, H, W, 1), color, edge (N, H, W, 1) (and the unpaired
    cloth's), pose_boxes, difficulty (names), ids."""
    meta, data = packed.load(pack_dir, IMAGES, HINT)
    for k in ("label", "edge", "unpaired_edge"):
        if k in data:
            data[k] = data[k][..., None]
    data["difficulty"] = np.array(quality.DIFFICULTIES)[data["difficulty"].astype(np.int64)]
    if len(data["image"]) != meta["examples"]:
        raise ValueError(f"{pack_dir}: {len(data['image'])} examples decoded, pack.json says {meta['examples']}")
    return data


def unpaired(data: dict) -> dict:
    """The raw inputs with the official list's cloths (the paired ones where the pack has no other)."""
    return {**{k: data[k] for k in samples.RAW_KEYS},
            **({"color": data["unpaired_color"], "edge": data["unpaired_edge"]} if "unpaired_color" in data else {})}


def load_config(path: str, overrides=()):
    """get_config() of a config file, with 'key.path=value' overrides (Python literals or text)."""
    spec = importlib.util.spec_from_file_location("packed_config", path)
    if spec is None or not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path} not found (e.g. configs/compact.py)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected key.path=value")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        config.update_from_flattened_dict({key: value})
    return config


def packed_step(step_fn):
    """train_step's step on the batch ``index`` picks from a device-resident split."""
    def step(state, data, index, constants):
        return step_fn(state, {k: data[k][index] for k in samples.RAW_KEYS}, constants)
    return step


def _folder_name(path: str | None) -> str | None:
    """A folder's own name: model.json may be committed, so it names no machine's paths."""
    return os.path.basename(os.path.normpath(path)) if path else None


def _hardware() -> str:
    d = jax.devices()[0]
    return f"{jax.device_count()} x {getattr(d, 'device_kind', d.platform)}"


def train_on_pack(config, pack_dir: str, test_pack: str | None, out: str, max_minutes: float = 0.0,
                  init_model: str | None = None) -> tuple[dict, dict]:
    """Trains on a pack (see the module docstring); returns (model.json's content, the trained
    generators' float32 variables)."""
    started = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    data = load(pack_dir)
    test = load(test_pack) if test_pack else None
    spec = ModelSpec.from_dict(config.model)
    n, batch = len(data["image"]), config.batch_size
    mesh = make_mesh()
    if batch % jax.device_count():
        raise ValueError(f"batch_size {batch} must be a multiple of the {jax.device_count()} devices")
    steps_per_epoch = n // batch
    tc = config.train
    num_steps = tc.num_steps or tc.num_epochs * steps_per_epoch
    state = train_step.initial_state(config, spec)
    if init_model:
        generators, init_spec, _ = shipped.load_model(init_model)
        if init_spec != spec:
            raise ValueError(f"{init_model}: its model_spec {init_spec} is not the config's {spec}")
        state = state.replace(params={**state.params, **{g: generators[g]["params"] for g in train_step.GENERATORS}})
    shardings = state_shardings(mesh, state, tc.shard_params)
    repl, batch_sh = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    step = jax.jit(packed_step(train_step.make_train_step(config, spec, steps_per_epoch, batch)),
                   in_shardings=(shardings, repl, batch_sh, repl), out_shardings=(shardings, repl, repl),
                   donate_argnums=(0,))
    state = jax.device_put(state, shardings)
    on_device = jax.device_put({k: data[k] for k in samples.RAW_KEYS}, repl)
    constants = jax.device_put(train.vgg_constants(config), repl)
    sampler = packed.EpochSampler(n, batch, config.seed)
    log = MetricsLog(out)
    say(f"ACGPN (packed): {n} examples on {_hardware()}, {num_steps} steps of {batch} "
        f"({num_steps / steps_per_epoch:.1f} epochs) at most, {max_minutes or 'no'} minutes; loaded in "
        f"{time.perf_counter() - started:.0f} s; first step compiles")
    train_started = time.perf_counter()
    state, done, preview = packed.train_resident(
        step, state, num_steps, lambda: (on_device, sampler.next(), constants), log, tc.log_every, "ACGPN (packed)",
        ("loss_G", "loss_D"), max_minutes, started)
    train_minutes = (time.perf_counter() - train_started) / 60
    log.picture(done, "train", train.preview_grid(preview))
    generators = jax.device_get(state.generators())
    record = {"training": {"steps": done, "epochs": round(done * batch / n, 2), "examples_seen": done * batch,
                          "batch_size": batch, "data": json.loads((open(os.path.join(pack_dir, packed.META_FILE))
                                                                     .read()))["dataset"],
                          "hardware": _hardware(), "minutes": round(train_minutes, 2), "dtype": tc.dtype,
                          "lr": tc.lr, "seed": config.seed, "vgg_losses": bool(tc.vgg19_weights),
                          "init_model": _folder_name(init_model)}}
    if test is not None:
        f16 = shipped.as_shipped(generators)
        fake = quality.generate(f16, {k: test[k] for k in samples.RAW_KEYS}, config.eval.batch_size, config.eval.seed,
                                mesh, spec, "paired test")
        record["metrics"] = {"pairs": f"{len(fake)} paired pairs of the pack {_folder_name(test_pack)}",
                             "seed": config.eval.seed,
                             **quality.paired_metrics(fake, test["image"], test["difficulty"], config.eval.batch_size)}
        scores = record["metrics"]
        say(f"paired test SSIM {scores['ssim']['all']:.4f}, MS-SSIM {scores['ms_ssim']['all']:.4f}")
        view = {k: v[:UNPAIRED_VIEW] for k, v in unpaired(test).items()}
        images = quality.generate(f16, view, UNPAIRED_VIEW, config.eval.seed, mesh, spec, "unpaired view")
        log.picture(done, "unpaired_test", _unpaired_grid(view, images, spec))
    log.close()
    shipped.write_model(out, generators, spec, record)
    say(f"wrote {out}: model.json, float16 generators, metrics.jsonl, samples/")
    return shipped.read_meta(out), generators


def _unpaired_grid(raw: dict, results: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """person | cloth | try-on, one row per example, at the model's resolution (enlarged to at
    least 256 pixels high)."""
    person = quality.resized(raw["image"], spec.height, spec.width)
    cloth = quality.resized(raw["color"], spec.height, spec.width)
    grid = files.grid([[person[i], cloth[i], results[i]] for i in range(len(results))])
    scale = max(1, 256 // spec.height)
    return grid.repeat(scale, axis=0).repeat(scale, axis=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tryon_jax.acgpn.train_packed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    packed.add_pack_command(sub, "persons, paired and unpaired cloths, masks, labels, poses", 40.0)
    t = sub.add_parser("train", help="train on a pack, then evaluate and write the model folder")
    t.add_argument("--pack", required=True, help="the train split's pack")
    t.add_argument("--test_pack", help="the test split's pack (paired SSIM / MS-SSIM, unpaired picture)")
    t.add_argument("--config", required=True, help="config file, e.g. configs/compact.py")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, repeatable")
    t.add_argument("--out", required=True)
    t.add_argument("--max_minutes", type=float, default=0.0, help="stop (and save) after this long; 0: never")
    t.add_argument("--init_model", help="model folder whose generators to start from (discriminators start fresh)")
    args = ap.parse_args(argv)
    try:
        if args.command == "pack":
            paths = pack(args.data_dir, args.out, args.split, args.name, args.shard_mb)
            print(packed.sizes_mb(paths))
            return 0
        config = load_config(args.config, args.set)
        meta, _ = train_on_pack(config, args.pack, args.test_pack, args.out, args.max_minutes, args.init_model)
    except (FileNotFoundError, ValueError, samples.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: meta[k] for k in ("training", "metrics") if k in meta}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
