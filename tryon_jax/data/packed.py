"""Packed shards, and training from a split held in device memory.

An accelerator step can take a few milliseconds, far less than a host pipeline needs to decode
a batch, and an accelerator machine may have neither the TFDS data nor tensorflow_datasets.
A pack is PACK/pack.json plus shard_XXX.npz files of bounded size (no pickle): each field is an
array, or a list of encoded records (JPEG/PNG bytes as the dataset holds them, not re-encoded)
stored as one byte array plus offsets. ``load`` decodes the shards with a thread pool; the
trainer puts the split on the devices once and draws every batch there by index
(``train_resident``). The parser's trainer uses it (person.parser_packed), ACGPN's will too.
"""
import io
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import numpy as np
from PIL import Image
from tqdm import tqdm

from tryon_jax.core import files
from tryon_jax.core.metrics_log import say

META_FILE = "pack.json"
_OFFSETS = "__offsets"


def shard_count(total_bytes: int, shard_mb: float) -> int:
    """Shards needed for ``total_bytes`` so that each stays under ``shard_mb`` MB (npz overhead
    included with a 3% margin)."""
    return max(1, math.ceil(total_bytes / (shard_mb * 1e6 * 0.97)))


def write(out: str, shards: list[dict], meta: dict) -> list[str]:
    """Writes OUT/shard_XXX.npz (each a dict of arrays or lists of bytes records) and
    OUT/pack.json (``meta`` plus the shard names), each file atomically. Returns the paths."""
    os.makedirs(out, exist_ok=True)
    paths = []
    for s, fields in enumerate(shards):
        arrays = {}
        for name, value in fields.items():
            if isinstance(value, np.ndarray):
                arrays[name] = value
            else:  # encoded records
                arrays[name] = np.frombuffer(b"".join(value), np.uint8)
                arrays[name + _OFFSETS] = np.cumsum([0] + [len(b) for b in value]).astype(np.int64)
        path = os.path.join(out, f"shard_{s:03d}.npz")
        with files.atomic_write(path) as f:
            np.savez(f, **arrays)
        paths.append(path)
    with files.atomic_write(os.path.join(out, META_FILE), "w") as f:
        json.dump({**meta, "shards": [os.path.basename(p) for p in paths]}, f, indent=1)
    return paths


def decode_images(blob: np.ndarray, offsets: np.ndarray, mode: str, what: str) -> np.ndarray:
    """Every encoded image of one field, decoded in parallel and stacked: (N, H, W[, C]) uint8."""
    def one(i):
        try:
            return np.asarray(Image.open(io.BytesIO(blob[offsets[i]:offsets[i + 1]].tobytes())).convert(mode))
        except OSError as e:
            raise ValueError(f"{what} #{i}: undecodable ({e})") from e
    with ThreadPoolExecutor(min(32, os.cpu_count() or 1)) as pool:
        return np.stack(list(pool.map(one, range(len(offsets) - 1))))


def load(pack_dir: str, image_modes: dict[str, str], hint: str) -> tuple[dict, dict]:
    """(pack.json, every field of every shard concatenated): encoded fields named in
    ``image_modes`` (field -> PIL mode) decoded, arrays as stored. ``hint`` says how to write
    the pack, for the error when it is missing."""
    meta_path = Path(pack_dir) / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: {hint}")
    meta = json.loads(meta_path.read_text())
    parts: dict[str, list] = {}
    for name in meta["shards"]:
        path = Path(pack_dir) / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: shard missing from the pack ({len(meta['shards'])} shards listed)")
        with np.load(path, allow_pickle=False) as z:
            for field in z.files:
                if field.endswith(_OFFSETS):
                    continue
                if field in image_modes:
                    value = decode_images(z[field], z[field + _OFFSETS], image_modes[field], f"{path} {field}")
                elif field + _OFFSETS in z.files:
                    raise ValueError(f"{path}: no decoding given for the encoded field {field!r}")
                else:
                    value = np.asarray(z[field])
                parts.setdefault(field, []).append(value)
    return meta, {k: np.concatenate(v) for k, v in parts.items()}


def add_pack_command(subparsers, what: str, shard_mb: float):
    """The ``pack`` subcommand of a packed trainer's command line, with the options every pack
    takes; returns its parser for more."""
    p = subparsers.add_parser("pack", help=f"write a TFDS split as shards ({what})")
    p.add_argument("--data_dir", required=True, help="TFDS data_dir holding the viton dataset")
    p.add_argument("--out", required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--name", default="viton/cpvton")
    p.add_argument("--shard_mb", type=float, default=shard_mb, help="at most this many MB per shard (a device call "
                   "carries 64 MiB, the checkout included)")
    return p


def sizes_mb(paths: list[str]) -> str:
    """The written shards and their sizes, as JSON for the console."""
    return json.dumps({p: round(os.path.getsize(p) / 1e6, 1) for p in paths}, indent=1)


class EpochSampler:
    """Batches of example indices: a fresh permutation each epoch, the tail of an epoch dropped."""

    def __init__(self, size: int, batch_size: int, seed: int):
        if size < batch_size:
            raise ValueError(f"{size} examples, fewer than one batch of {batch_size}")
        self.size, self.batch_size = size, batch_size
        self.rng = np.random.default_rng(seed)
        self._order, self._at = self.rng.permutation(size), 0

    def next(self) -> np.ndarray:
        if self._at + self.batch_size > self.size:
            self._order, self._at = self.rng.permutation(self.size), 0
        batch = self._order[self._at:self._at + self.batch_size]
        self._at += self.batch_size
        return batch.astype(np.int32)


def train_resident(step, state, num_steps: int, batch_args, log, log_every: int, name: str, postfix=(),
                   max_minutes: float = 0.0, started: float | None = None):
    """Runs ``state, metrics, preview = step(state, *batch_args())`` for ``num_steps`` steps
    (or until ``max_minutes`` after ``started``), with a progress bar, metrics every
    ``log_every`` steps into ``log`` (core.metrics_log.MetricsLog) and a check that they are
    finite. Returns (state, steps done, the last preview)."""
    started = time.perf_counter() if started is None else started
    done, preview, t0, n0 = 0, None, time.perf_counter(), 0
    with tqdm(total=num_steps, desc=name, unit="step", disable=jax.process_index() != 0) as bar:
        for done in range(1, num_steps + 1):
            state, metrics, preview = step(state, *batch_args())
            late = max_minutes and time.perf_counter() - started > 60 * max_minutes
            if done % log_every == 0 or done == num_steps or late:
                metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                if not all(math.isfinite(v) for v in metrics.values()):
                    raise FloatingPointError(f"step {done}: non-finite metrics {metrics}")
                rate = (done - n0) / (time.perf_counter() - t0)
                log.scalars(done, {**metrics, "steps_per_second": rate})
                bar.set_postfix(**{k: f"{metrics[k]:.3f}" for k in postfix}, step_s=f"{rate:.1f}")
                t0, n0 = time.perf_counter(), done
            bar.update(1)
            if late:
                say(f"{name}: stopping at step {done} of {num_steps} after {max_minutes} min")
                break
    return state, done, preview
