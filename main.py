"""tryon-jax entry point: python main.py --config=configs/viton.py --workdir=DIR."""
import os
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics, pictures and outputs.")
flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() first (one process per host). On "
                  "SLURM/TPU/MPI clusters the rest is detected; otherwise give the three flags below.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multihost without a cluster manager)")
flags.DEFINE_integer("num_processes", None, "number of processes (multihost without a cluster manager)")
flags.DEFINE_integer("process_id", None, "this process's index (multihost without a cluster manager)")
config_flags.DEFINE_config_file("config", None, "Configuration file (a get_config() module).", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError("Too many command-line arguments.")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO; --verbosity=0 shows them
    if FLAGS.multihost:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU-only hosts; GPUs/TPUs unaffected
        jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    logging.info("JAX process %d / %d, local devices: %s", jax.process_index(), jax.process_count(),
                 jax.local_devices())
    config = FLAGS.config
    from tryon_jax import jobs
    from tryon_jax.data import samples
    if config.job not in jobs.JOBS:
        raise app.UsageError(f"unknown job {config.job!r} (jobs: {sorted(jobs.JOBS)})")
    try:
        jobs.JOBS[config.job](config, FLAGS.workdir)
    except (ValueError, FileNotFoundError, samples.DataError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(lambda argv: sys.exit(main(argv)))
