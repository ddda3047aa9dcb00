"""python -m evaluation --config=configs/viton.py --workdir=DIR [--checkpoints=all|latest|N,M] [--force]

Evaluates checkpoints of a workdir in batch: DIR/eval/<step>.json, DIR/eval/report.md and
DIR/eval/metrics.png. Steps already evaluated are skipped unless --force.
"""
import sys

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Workdir whose checkpoints/ are evaluated.")
flags.DEFINE_string("checkpoints", "all", "all, latest, or a comma-separated list of steps.")
flags.DEFINE_bool("force", False, "Re-evaluate steps that already have eval/<step>.json.")
config_flags.DEFINE_config_file("config", None, "Configuration file (its `eval` section is used).", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    from evaluation import evaluate
    from tryon_jax.data.samples import DataError
    try:
        written = evaluate.run(FLAGS.config, FLAGS.workdir, FLAGS.checkpoints, FLAGS.force)
    except (FileNotFoundError, ValueError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"evaluated {len(written)} checkpoint(s); report: {FLAGS.workdir}/eval/report.md, plot: "
          f"{FLAGS.workdir}/eval/metrics.png")
    return 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
