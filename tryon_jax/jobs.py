"""Jobs that main.py runs from a config: ``train``, ``tryon`` and ``parser``."""
import os

from absl import logging

from tryon_jax import checkpoint, data, tryon, weights


def train_job(config, workdir: str) -> None:
    """Trains (or resumes) into WORKDIR: checkpoints, metrics.jsonl, tensorboard/, samples/."""
    from tryon_jax import train
    state = train.train_and_evaluate(config, workdir)
    print(f"trained to step {int(state.step)}; checkpoints in {checkpoint.checkpoint_dir(workdir)}, metrics in "
          f"{os.path.join(workdir, 'metrics.jsonl')}, pictures in {os.path.join(workdir, 'samples')}")


def parser_job(config, workdir: str) -> None:
    """Trains (or resumes) the human parser into WORKDIR (configs/parser.py)."""
    from tryon_jax import parser_train
    state = parser_train.train_and_evaluate(config, workdir)
    print(f"parser trained to step {int(state.step)}; weights {os.path.join(workdir, 'parser.npz')}")


def tryon_job(config, workdir: str) -> list[str]:
    """Batched try-on of config.tryon.pairs; PNGs into WORKDIR/tryon. Weights: the one source
    named in config.tryon, else the latest checkpoint of WORKDIR."""
    tc = config.tryon
    pairs = data.read_pairs(tc.pairs or os.path.join(tc.data_dir, f"{tc.split}_pairs.txt"))
    cloths = None
    if tc.get("musinsa_data_dir"):
        cloths = musinsa_cloths(tc.musinsa_data_dir, tc.musinsa_category, tc.musinsa_limit)
        persons = list(dict.fromkeys(p.person for p in pairs))[: tc.musinsa_persons or None]
        pairs = [data.Pair(person, name) for person in persons for name in cloths]
    named = bool(tc.acgpn_checkpoints or tc.params or tc.recipe_weights)
    if not named and not checkpoint.steps(workdir):
        raise FileNotFoundError(
            f"no weights for try-on: {checkpoint.checkpoint_dir(workdir)} holds no training checkpoint. Train first "
            "(python main.py --config=... --workdir=DIR) or name weights: --config.tryon.acgpn_checkpoints=DIR "
            "(the released latest_net_{U,G1,G2,G}.pth), --config.tryon.params=FILE (from python -m tryon_jax.export) "
            "or --config.tryon.recipe_weights=True (random weights)")
    variables, source, spec = weights.load_variables(tc.acgpn_checkpoints or None, tc.params or None,
                                                      tc.recipe_weights, None if named else workdir)
    logging.info("weights: %s; %d pairs", source, len(pairs))
    out = os.path.join(workdir, "tryon")
    written = tryon.run(variables, tc.data_dir, pairs, out, tc.batch_size, config.seed, tc.split, spec=spec,
                        cloths=cloths)
    print(f"weights: {source}; wrote {len(written)} try-on images to {out}/results and strips "
          f"(person | cloth | warped | result) to {out}/strips")
    return written


def musinsa_cloths(data_dir: str, category: str = "top", limit: int = 0) -> dict:
    """{"musinsa_<goodsNo>.png": {"color", "edge"}} of the Musinsa TFDS dataset's garments of
    ``category`` (decoded uint8, 256x192, VITON framing)."""
    from tryon_jax.catalogue import Catalogue
    garments = Catalogue.from_tfds(data_dir).list(category)[:limit or None]
    if not garments:
        raise ValueError(f"{data_dir}: the musinsa dataset has no {category!r} garments")
    return {f"musinsa_{g.id}.png": {"color": g.cloth, "edge": g.mask} for g in garments}


JOBS = {"train": train_job, "tryon": tryon_job, "parser": parser_job}
