"""Jobs that main.py runs from a config."""
import os

from absl import logging

from tryon_jax import data, tryon, weights


def tryon_job(config, workdir: str) -> list[str]:
    """Batched try-on of config.pairs from config.data_dir; PNGs into WORKDIR/tryon."""
    pairs = data.read_pairs(config.pairs or os.path.join(config.data_dir, f"{config.split}_pairs.txt"))
    variables, source = weights.load_variables(config.acgpn_checkpoints or None, config.params or None,
                                                config.recipe_weights)
    logging.info("weights: %s; %d pairs", source, len(pairs))
    out = os.path.join(workdir, "tryon")
    written = tryon.run(variables, config.data_dir, pairs, out, config.batch_size, config.seed, config.split)
    logging.info("wrote %d try-on images to %s (strips: person | cloth | warped | result)", len(written), out)
    print(f"wrote {len(written)} try-on images to {out}/results and strips to {out}/strips")
    return written

