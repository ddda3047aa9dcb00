"""python -m evaluation --config=configs/viton.py --workdir=DIR [--checkpoints=all|latest|N,M] [--force]
                        [--model=shipped|MODEL_DIR]

Evaluates the checkpoints of a workdir (or, with --model, one model folder: 'shipped' is the
model this repository ships) in batch: DIR/eval/<step>.json, DIR/eval/report.md and
DIR/eval/metrics.png; prints the report's table. Steps already evaluated are skipped unless
--force. IS and FID need --config.eval.inception_weights; without it they are reported as not
computed. --config.eval.tfds_data_dir=DATA takes the pairs from the VITON TFDS dataset (all
2032 test persons, paired and unpaired) instead of the pair lists.
"""
import sys

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Workdir whose checkpoints/ are evaluated (and where eval/ is written).")
flags.DEFINE_string("checkpoints", "all", "all, latest, or a comma-separated list of steps.")
flags.DEFINE_string("model", None, "Evaluate this model folder instead of checkpoints ('shipped': the shipped one).")
flags.DEFINE_bool("force", False, "Re-evaluate steps that already have eval/<step>.json.")
config_flags.DEFINE_config_file("config", None, "Configuration file (its `eval` section is used).", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every file it reads at INFO; --verbosity=0 shows them
    from evaluation import evaluate, report
    from tryon_jax.data.samples import DataError
    try:
        written = evaluate.run(FLAGS.config, FLAGS.workdir, FLAGS.checkpoints, FLAGS.force, FLAGS.model)
    except (FileNotFoundError, ValueError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.read(f"{FLAGS.workdir}/eval"))
    print(f"evaluated {len(written)} model(s); report: {FLAGS.workdir}/eval/report.md, plot: "
          f"{FLAGS.workdir}/eval/metrics.png")
    return 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
