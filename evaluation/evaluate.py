"""Checkpoint evaluation: paired SSIM / MS-SSIM, unpaired IS / FID, each overall and per
difficulty, with fixed pairs and fixed noise (reproducible to the bit on one machine).

Images are compared as a person would see the saved results: generated images are quantised
to uint8 (like the PNGs) and compared with the decoded real person images.
"""
import dataclasses
import functools
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from evaluation import report
from tryon_datasets.viton.viton import official_difficulty
from tryon_jax.acgpn import batches, inference
from tryon_jax.core import files
from tryon_jax.data import loader_ops, samples
from tryon_jax.metrics import fid as fidlib
from tryon_jax.metrics import inception, ssim
from tryon_jax.models.spec import ModelSpec
from tryon_jax.weights import checkpoint

SPLITS = ("all", "easy", "medium", "hard")


@dataclasses.dataclass
class PairSet:
    """Decoded inputs of a pair list (host arrays), their difficulty and the real persons."""
    pairs: list
    raw: dict
    difficulty: np.ndarray
    real: np.ndarray  # uint8 (N, H, W, 3) person images

    @classmethod
    def load(cls, data_dir: str, pairs_file: str, split: str = "test") -> "PairSet":
        pairs = samples.read_pairs(pairs_file)
        examples = [samples.load_raw(data_dir, p, split) for p in tqdm(pairs, desc=f"decode {os.path.basename(pairs_file)}",
                                                                     unit="pair", leave=False)]
        levels = official_difficulty()
        diff = np.array([levels.get(p.person, "unknown") for p in pairs])
        return cls(pairs, samples.stack(examples, samples.RAW_KEYS), diff, np.stack([e["image"] for e in examples]))


def _mesh() -> Mesh:
    return Mesh(np.array(jax.devices()), ("data",))


@functools.partial(jax.jit, static_argnames="spec")
def _generate(variables, raw, keys, spec: ModelSpec):
    batch = batches.resize(loader_ops.prepare(raw), spec.height, spec.width)
    out = inference.tryon_graph(variables, batch, keys, spec=spec)
    return jnp.clip(jnp.round((out["fake_image"] + 1) * 127.5), 0, 255).astype(jnp.uint8)


def real_at(real: np.ndarray, height: int, width: int) -> np.ndarray:
    """The real person images at the model's resolution (as the generated ones are)."""
    if real.shape[1:3] == (height, width):
        return real
    x = batches.resize({"image": jnp.asarray(real, jnp.float32)}, height, width)["image"]
    return np.asarray(jnp.clip(jnp.round(x), 0, 255)).astype(np.uint8)


def generate(variables: dict, pairs: PairSet, batch_size: int, seed: int, mesh: Mesh, desc: str = "",
             spec: ModelSpec = ModelSpec()) -> np.ndarray:
    """uint8 try-on images for every pair; pair i's noise is fold_in(seed, i). Batches are
    sharded over the mesh's 'data' axis (padded to a multiple of the device count)."""
    n = len(pairs.pairs)
    per = max(1, math.ceil(batch_size / mesh.size)) * mesh.size
    batch_sharding = NamedSharding(mesh, P("data"))
    variables = jax.device_put(variables, NamedSharding(mesh, P()))
    base = jax.random.key(seed)
    out = []
    for start in tqdm(range(0, n, per), desc=desc or "generate", unit="batch", leave=False):
        idx = np.minimum(np.arange(start, start + per), n - 1)
        raw = jax.device_put({k: v[idx] for k, v in pairs.raw.items()}, batch_sharding)
        keys = jax.device_put(jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(idx)), batch_sharding)
        out.append(np.asarray(_generate(variables, raw, keys, spec))[: min(per, n - start)])
    return np.concatenate(out)


def inception_outputs(variables, images: np.ndarray, batch_size: int, resize: bool) -> tuple[np.ndarray, np.ndarray]:
    """(softmax float64, pool3 float64) for uint8 images."""
    probs, pools = [], []
    for i in range(0, len(images), batch_size):
        logits, pool3 = inception.logits_and_pool3(variables, images[i:i + batch_size], resize=resize)
        logits = np.asarray(logits, np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs.append(e / e.sum(axis=1, keepdims=True))
        pools.append(np.asarray(pool3, np.float64))
    return np.concatenate(probs), np.concatenate(pools)


def _by_split(values: np.ndarray, difficulty: np.ndarray, fn) -> dict:
    out = {}
    for split in SPLITS:
        mask = np.ones(len(values), bool) if split == "all" else difficulty == split
        out[split] = fn(mask) if mask.any() else None
    return out


def paired_metrics(generated: np.ndarray, pairs: PairSet, batch_size: int) -> dict:
    s, ms = [], []
    real = real_at(pairs.real, *generated.shape[1:3])
    for i in range(0, len(generated), batch_size):
        g = generated[i:i + batch_size].astype(np.float32)
        r = real[i:i + batch_size].astype(np.float32)
        s.append(np.asarray(ssim.ssim(g / 255, r / 255)))
        ms.append(np.asarray(ssim.ms_ssim(g, r)))
    s, ms = np.concatenate(s).astype(np.float64), np.concatenate(ms).astype(np.float64)
    return {"ssim": _by_split(s, pairs.difficulty, lambda m: float(s[m].mean())),
            "ms_ssim": _by_split(ms, pairs.difficulty, lambda m: float(ms[m].mean())),
            "count_paired": _by_split(s, pairs.difficulty, lambda m: int(m.sum()))}


def unpaired_metrics(probs, pool_fake, pool_real, difficulty, is_splits: int) -> dict:
    def inception_score(m):
        return fidlib.inception_score(probs[m], min(is_splits, int(m.sum())))[0]

    def fid(m):
        return fidlib.fid(pool_fake[m], pool_real[m]) if m.sum() >= 2 else None
    return {"is": _by_split(probs, difficulty, inception_score), "fid": _by_split(probs, difficulty, fid),
            "count_unpaired": _by_split(probs, difficulty, lambda m: int(m.sum()))}


def select_steps(available: list[int], which: str) -> list[int]:
    if not available:
        return []
    if which == "all":
        return available
    if which == "latest":
        return [available[-1]]
    wanted = [int(s) for s in which.split(",") if s.strip()]
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise ValueError(f"no checkpoints for steps {missing} (available: {available})")
    return wanted


def run(config, workdir: str, which: str = "all", force: bool = False) -> list[str]:
    """Evaluate checkpoints of ``workdir``; writes eval/<step>.json, eval/report.md and eval/metrics.png."""
    cfg = config.eval
    steps = select_steps(checkpoint.steps(workdir), which)
    if not steps:
        raise FileNotFoundError(f"no checkpoints in {checkpoint.checkpoint_dir(workdir)}")
    out_dir = os.path.join(workdir, "eval")
    todo = [s for s in steps if force or not os.path.exists(os.path.join(out_dir, f"{s}.json"))]
    written = []
    if todo:
        inception_vars = inception.load_variables(cfg.inception_weights)  # fails early with a clear message
        paired = PairSet.load(cfg.data_dir, cfg.paired_pairs, cfg.split)
        unpaired = PairSet.load(cfg.data_dir, cfg.unpaired_pairs, cfg.split)
        spec = checkpoint.read_spec(workdir)
        _, pool_real = inception_outputs(inception_vars, real_at(unpaired.real, spec.height, spec.width), cfg.batch_size,
                                         cfg.inception_resize)
        mesh = _mesh()
        for step in tqdm(todo, desc="checkpoints", unit="ckpt"):
            variables = checkpoint.restore_generators(workdir, step)
            fake_paired = generate(variables, paired, cfg.batch_size, cfg.seed, mesh, f"step {step} paired", spec)
            fake_unpaired = generate(variables, unpaired, cfg.batch_size, cfg.seed, mesh, f"step {step} unpaired",
                                     spec)
            probs, pool_fake = inception_outputs(inception_vars, fake_unpaired, cfg.batch_size, cfg.inception_resize)
            result = {"step": step, **paired_metrics(fake_paired, paired, cfg.batch_size),
                      **unpaired_metrics(probs, pool_fake, pool_real, unpaired.difficulty, cfg.is_splits),
                      "protocol": {"paired_pairs": cfg.paired_pairs, "unpaired_pairs": cfg.unpaired_pairs,
                                   "seed": cfg.seed, "is_splits": cfg.is_splits,
                                   "inception_resize": cfg.inception_resize}}
            path = os.path.join(out_dir, f"{step}.json")
            with files.atomic_write(path, "w") as f:
                json.dump(result, f, indent=1)
            written.append(path)
    results = [json.load(open(os.path.join(out_dir, f))) for f in sorted(os.listdir(out_dir))
               if f.endswith(".json") and f[:-5].isdigit()]
    report.write(results, out_dir)
    return written
