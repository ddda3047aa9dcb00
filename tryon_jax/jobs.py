"""Jobs that main.py runs from a config: ``train``, ``tryon`` and ``parser``."""
import os

from absl import logging

from tryon_jax import tryon
from tryon_jax.data import samples
from tryon_jax.weights import checkpoint, sources


def train_job(config, workdir: str) -> None:
    """Trains (or resumes) into WORKDIR: checkpoints, metrics.jsonl, tensorboard/, samples/."""
    from tryon_jax.acgpn import train
    state = train.train_and_evaluate(config, workdir)
    print(f"trained to step {int(state.step)}; checkpoints in {checkpoint.checkpoint_dir(workdir)}, metrics in "
          f"{os.path.join(workdir, 'metrics.jsonl')}, pictures in {os.path.join(workdir, 'samples')}")


def parser_job(config, workdir: str) -> None:
    """Trains (or resumes) the human parser into WORKDIR (configs/parser.py)."""
    from tryon_jax.person.training import parser_train
    state = parser_train.train_and_evaluate(config, workdir)
    print(f"parser trained to step {int(state.step)}; weights {os.path.join(workdir, 'parser.npz')}")


def tryon_job(config, workdir: str) -> list[str]:
    """Batched try-on of config.tryon.pairs; PNGs into WORKDIR/tryon. Weights: the one source
    named in config.tryon, else the latest checkpoint of WORKDIR, else the shipped model."""
    tc = config.tryon
    if not tc.data_dir:
        raise ValueError("config.tryon.data_dir is empty: name a folder of persons in ACGPN layout (python -m "
                         "tryon_jax.prepare_person --garment lower --out DIR writes one for bottoms)")
    pairs = samples.read_pairs(tc.pairs or os.path.join(tc.data_dir, f"{tc.split}_pairs.txt"))
    named = bool(tc.acgpn_checkpoints or tc.params or tc.recipe_weights or tc.model)
    from_run = not named and bool(checkpoint.steps(workdir))
    variables, source, spec = sources.load_variables(tc.acgpn_checkpoints or None, tc.params or None,
                                                      tc.recipe_weights, workdir if from_run else None,
                                                      tc.model or None)
    cloths = None
    if tc.get("musinsa_data_dir"):
        from tryon_jax.data.catalogue import musinsa_cloths
        cloths = musinsa_cloths(tc.musinsa_data_dir, tc.musinsa_category, tc.musinsa_limit, spec.garment)
        persons = list(dict.fromkeys(p.person for p in pairs))[: tc.musinsa_persons or None]
        pairs = [samples.Pair(person, name) for person in persons for name in cloths]
    logging.info("weights: %s; %d pairs", source, len(pairs))
    out = os.path.join(workdir, "tryon")
    written = tryon.run(variables, tc.data_dir, pairs, out, tc.batch_size, config.seed, tc.split, spec=spec,
                        cloths=cloths)
    print(f"weights: {source}; wrote {len(written)} try-on images to {out}/results and strips "
          f"(person | cloth | warped | result) to {out}/strips")
    return written


JOBS = {"train": train_job, "tryon": tryon_job, "parser": parser_job}
