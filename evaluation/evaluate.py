"""Checkpoint evaluation: paired SSIM / MS-SSIM, unpaired IS / FID, each overall and per
difficulty, with fixed pairs and fixed noise (reproducible to the bit on one machine).

The pairs come from a folder in ACGPN layout with two pair lists (``eval.data_dir``,
``eval.paired_pairs``, ``eval.unpaired_pairs``) or from the VITON TFDS dataset
(``eval.tfds_data_dir``: every test person with its own cloth, paired, and with the cloth of
the official list, unpaired). IS and FID need torchvision's Inception v3 weights
(``eval.inception_weights``); without them they are reported as not computed, with the reason.
What is evaluated: the checkpoints of a workdir, or one model folder (``model``).
"""
import dataclasses
import json
import os

import numpy as np
from tqdm import tqdm

from evaluation import report
from tryon_jax.acgpn import quality
from tryon_jax.core import files
from tryon_jax.data import samples
from tryon_jax.metrics import fid as fidlib
from tryon_jax.metrics import inception
from tryon_jax.weights import checkpoint, shipped

SPLITS = quality.SPLITS
NO_INCEPTION = ("not computed: no eval.inception_weights (a .pth with torchvision's inception_v3 "
                "state_dict; nothing is downloaded)")


@dataclasses.dataclass
class PairSet:
    """Decoded inputs of a pair list (host arrays), their difficulty and the real persons."""
    pairs: list
    raw: dict
    difficulty: np.ndarray
    real: np.ndarray  # uint8 (N, H, W, 3) person images

    @classmethod
    def load(cls, data_dir: str, pairs_file: str, split: str = "test") -> "PairSet":
        from tryon_datasets.viton.viton import official_difficulty
        pairs = samples.read_pairs(pairs_file)
        examples = [samples.load_raw(data_dir, p, split)
                    for p in tqdm(pairs, desc=f"decode {os.path.basename(pairs_file)}", unit="pair", leave=False)]
        levels = official_difficulty()
        diff = np.array([levels.get(p.person, "unknown") for p in pairs])
        return cls(pairs, samples.stack(examples, samples.RAW_KEYS), diff, np.stack([e["image"] for e in examples]))

    @classmethod
    def from_tfds(cls, name: str, split: str, data_dir: str, pairing: str) -> "PairSet":
        """Every example of a VITON TFDS split, with its own cloth ('paired') or the official
        list's ('unpaired')."""
        from tryon_jax.data import input_pipeline
        source = input_pipeline.data_source(name, split, data_dir)
        decode = input_pipeline.DecodeExample(pairing)
        examples = [decode.map(source[i]) for i in tqdm(range(len(source)), desc=f"decode {name} {split} {pairing}",
                                                         unit="pair", leave=False)]
        pairs = [samples.Pair(str(e["person_id"]), str(e["cloth_id"])) for e in examples]
        diff = np.array([quality.DIFFICULTIES[int(e["difficulty"])] for e in examples])
        return cls(pairs, samples.stack(examples, samples.RAW_KEYS), diff, np.stack([e["image"] for e in examples]))


def load_pairs(cfg) -> tuple[PairSet, PairSet]:
    """(paired, unpaired) pair sets of the config's eval section."""
    if not cfg.tfds_data_dir and not cfg.data_dir:
        raise ValueError(f"no evaluation pairs: pass --config.eval.tfds_data_dir=DIR (the data_dir holding the TFDS "
                         f"dataset {cfg.tfds_name}) or an ACGPN folder in --config.eval.data_dir")
    if cfg.tfds_data_dir:
        return (PairSet.from_tfds(cfg.tfds_name, cfg.split, cfg.tfds_data_dir, "paired"),
                PairSet.from_tfds(cfg.tfds_name, cfg.split, cfg.tfds_data_dir, "unpaired"))
    return PairSet.load(cfg.data_dir, cfg.paired_pairs, cfg.split), PairSet.load(cfg.data_dir, cfg.unpaired_pairs,
                                                                                  cfg.split)


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


def unpaired_metrics(probs, pool_fake, pool_real, difficulty, is_splits: int) -> dict:
    def inception_score(m):
        return fidlib.inception_score(probs[m], min(is_splits, int(m.sum())))[0]

    def fid(m):
        return fidlib.fid(pool_fake[m], pool_real[m]) if m.sum() >= 2 else None
    return {"is": quality.by_difficulty(probs, difficulty, inception_score),
            "fid": quality.by_difficulty(probs, difficulty, fid),
            "count_unpaired": quality.by_difficulty(probs, difficulty, lambda m: int(m.sum()))}


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


def _models(workdir: str, which: str, model: str | None) -> list[tuple]:
    """[(step, load variables, spec, description)] to evaluate."""
    if model:
        folder = None if model == "shipped" else model
        step = int(shipped.read_meta(folder).get("training", {}).get("steps", 0))
        spec = shipped.load_model(folder)[1]
        return [(step, lambda: shipped.load_model(folder)[0], spec, "the shipped model" if folder is None else model)]
    steps = select_steps(checkpoint.steps(workdir), which)
    if not steps:
        raise FileNotFoundError(f"no checkpoints in {checkpoint.checkpoint_dir(workdir)}")
    spec = checkpoint.read_spec(workdir)
    return [(s, lambda s=s: checkpoint.restore_generators(workdir, s), spec, f"step {s}") for s in steps]


def run(config, workdir: str, which: str = "all", force: bool = False, model: str | None = None) -> list[str]:
    """Evaluates the checkpoints of ``workdir`` (or the model folder ``model``; 'shipped': the
    shipped one); writes WORKDIR/eval/<step>.json, eval/report.md and eval/metrics.png."""
    cfg = config.eval
    todo_all = _models(workdir, which, model)
    out_dir = os.path.join(workdir, "eval")
    todo = [m for m in todo_all if force or not os.path.exists(os.path.join(out_dir, f"{m[0]}.json"))]
    written = []
    if todo:
        inception_vars = inception.load_variables(cfg.inception_weights) if cfg.inception_weights else None
        paired, unpaired = load_pairs(cfg)
        pool_real = None  # Inception pool3 of the real persons
        for step, load, spec, what in tqdm(todo, desc="models", unit="model"):
            variables = load()
            fake_paired = quality.generate(variables, paired.raw, cfg.batch_size, cfg.seed, spec=spec,
                                           desc=f"{what} paired")
            result = {"step": step, "model": what,
                      **quality.paired_metrics(fake_paired, paired.real, paired.difficulty, cfg.batch_size)}
            if inception_vars is None:
                result.update({"is": dict.fromkeys(SPLITS), "fid": dict.fromkeys(SPLITS),
                               "count_unpaired": dict.fromkeys(SPLITS), "unpaired_note": NO_INCEPTION})
            else:
                fake_unpaired = quality.generate(variables, unpaired.raw, cfg.batch_size, cfg.seed, spec=spec,
                                                 desc=f"{what} unpaired")
                if pool_real is None:
                    pool_real = inception_outputs(inception_vars, unpaired.real, cfg.batch_size,
                                                  cfg.inception_resize)[1]
                probs, pool_fake = inception_outputs(inception_vars, quality.resized(fake_unpaired,
                                                                                     *unpaired.real.shape[1:3]),
                                                     cfg.batch_size, cfg.inception_resize)
                result.update(unpaired_metrics(probs, pool_fake, pool_real, unpaired.difficulty, cfg.is_splits))
            result["protocol"] = {"pairs": f"{cfg.tfds_name}:{cfg.split} in {cfg.tfds_data_dir}" if cfg.tfds_data_dir
                                  else {"paired": cfg.paired_pairs, "unpaired": cfg.unpaired_pairs},
                                  "seed": cfg.seed, "is_splits": cfg.is_splits,
                                  "inception_resize": cfg.inception_resize,
                                  "model_resolution": [spec.height, spec.width],
                                  "scored_at": list(paired.real.shape[1:3])}
            path = os.path.join(out_dir, f"{step}.json")
            with files.atomic_write(path, "w") as f:
                json.dump(result, f, indent=1)
            written.append(path)
    results = [json.load(open(os.path.join(out_dir, f))) for f in sorted(os.listdir(out_dir))
               if f.endswith(".json") and f[:-5].isdigit()]
    report.write(results, out_dir)
    return written
