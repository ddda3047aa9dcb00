"""tryon-jax entry point: python main.py --config=configs/viton.py --workdir=DIR."""
import os
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for outputs (and, with training, checkpoints).")
config_flags.DEFINE_config_file("config", None, "Configuration file (a get_config() module).", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError("Too many command-line arguments.")
    logging.info("JAX process %d / %d, local devices: %s", jax.process_index(), jax.process_count(),
                 jax.local_devices())
    config = FLAGS.config
    if config.job != "tryon":
        raise app.UsageError(f"unknown job {config.job!r} (this version runs 'tryon')")
    from tryon_jax import data, jobs
    try:
        jobs.tryon_job(config, FLAGS.workdir)
    except (ValueError, FileNotFoundError, data.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(lambda argv: sys.exit(main(argv)))
