"""How good a try-on model is on a set of pairs: its uint8 results with fixed per-pair noise,
and the paired SSIM (pytorch-ssim) and MS-SSIM (pytorch_msssim) against the real persons,
overall and per ACGPN difficulty. Used by ``python -m evaluation`` and by the packed trainer.

Images are compared as a person sees the saved results: generated images are quantised to
uint8 (like the PNGs) and compared with the real person images at their resolution.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from tryon_jax.acgpn import batches, inference
from tryon_jax.core import xla_cpu
from tryon_jax.data import loader_ops, samples
from tryon_jax.metrics import ssim
from tryon_jax.models.spec import ModelSpec

SPLITS = ("all", "easy", "medium", "hard")
DIFFICULTIES = ("easy", "medium", "hard", "unknown")  # the VITON builder's ClassLabel names, in order


@xla_cpu.jit(static_argnames="spec")
def results_uint8(variables, raw, keys, spec: ModelSpec):
    """uint8 (B, H, W, 3) try-on images at the model's resolution from a raw batch."""
    batch = batches.resize(loader_ops.prepare(raw), spec.height, spec.width)
    out = inference.tryon_graph(variables, batch, keys, spec=spec)
    return jnp.clip(jnp.round((out["fake_image"] + 1) * 127.5), 0, 255).astype(jnp.uint8)


def resized(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 images at another resolution (batches.resize: box filter down, bilinear up)."""
    if images.shape[1:3] == (height, width):
        return images
    x = batches.resize({"image": jnp.asarray(images, jnp.float32)}, height, width)["image"]
    return np.asarray(jnp.clip(jnp.round(x), 0, 255)).astype(np.uint8)


def generate(variables: dict, raw: dict, batch_size: int, seed: int, mesh: Mesh | None = None,
             spec: ModelSpec = ModelSpec(), desc: str = "generate") -> np.ndarray:
    """uint8 try-on images for every example of ``raw`` (host arrays with samples.RAW_KEYS);
    example i's noise is fold_in(seed, i). Batches are sharded over the mesh's 'data' axis
    (padded to a multiple of the device count); the last batch is padded, so one shape compiles."""
    mesh = mesh or Mesh(np.array(jax.devices()), ("data",))
    n = len(raw["image"])
    per = max(1, math.ceil(batch_size / mesh.size)) * mesh.size
    batch_sharding = NamedSharding(mesh, P("data"))
    variables = jax.device_put(variables, NamedSharding(mesh, P()))
    base = jax.random.key(seed)
    out = []
    for start in tqdm(range(0, n, per), desc=desc, unit="batch", leave=False):
        idx = np.minimum(np.arange(start, start + per), n - 1)
        batch = jax.device_put({k: np.asarray(raw[k])[idx] for k in samples.RAW_KEYS}, batch_sharding)
        keys = jax.device_put(jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(idx)), batch_sharding)
        out.append(np.asarray(results_uint8(variables, batch, keys, spec))[: min(per, n - start)])
    return np.concatenate(out)


@jax.jit
def _scores(generated, real):
    g, r = generated.astype(jnp.float32), real.astype(jnp.float32)
    return ssim.ssim(g / 255, r / 255), ssim.ms_ssim(g, r)


def by_difficulty(values: np.ndarray, difficulty: np.ndarray, fn) -> dict:
    """{split: fn(mask of the split)} for all / easy / medium / hard (None for an empty split)."""
    out = {}
    for split in SPLITS:
        mask = np.ones(len(values), bool) if split == "all" else difficulty == split
        out[split] = fn(mask) if mask.any() else None
    return out


def paired_metrics(generated: np.ndarray, real: np.ndarray, difficulty: np.ndarray, batch_size: int) -> dict:
    """Mean SSIM and MS-SSIM (and the pair counts) overall and per difficulty, at the real
    images' resolution (VITON's 256x192: a smaller model's results are upscaled, so every model
    is scored alike and MS-SSIM's five levels fit); ``difficulty`` holds 'easy' / 'medium' /
    'hard' / 'unknown' per pair."""
    generated = resized(generated, *real.shape[1:3])
    s, ms = [], []
    for i in range(0, len(generated), batch_size):
        a, b = jax.device_get(_scores(generated[i:i + batch_size], real[i:i + batch_size]))
        s.append(a)
        ms.append(b)
    s, ms = np.concatenate(s).astype(np.float64), np.concatenate(ms).astype(np.float64)
    return {"ssim": by_difficulty(s, difficulty, lambda m: float(s[m].mean())),
            "ms_ssim": by_difficulty(ms, difficulty, lambda m: float(ms[m].mean())),
            "count_paired": by_difficulty(s, difficulty, lambda m: int(m.sum()))}
