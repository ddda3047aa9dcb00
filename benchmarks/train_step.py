"""Training-step throughput: examples/s, achieved GFLOP/s (XLA cost analysis) against this
machine's numpy float32 matmul rate measured in the same run, compile time, peak RSS, and the
time one VITON epoch (14221 pairs) takes at that rate. Prints JSON.

    python benchmarks/train_step.py [--config demo|viton|hd|compact|compact_cpu] [--batch-sizes 1,4] [--iters 3]
        [--dtype float32|bfloat16]

All devices of the machine form the mesh (batch sizes are rounded up to a multiple of them).
The full step is timed: loader ops, the ACGPN_train forward of 4 generators and 4
discriminators, one backward pass and 8 Adam updates (VGG19 off: no weights file here).
"""
import argparse
import importlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P

from benchmarks.common import report, xla_flops  # noqa: E402
from tryon_jax.acgpn import train_step  # noqa: E402
from tryon_jax.core.mesh import global_batch, make_mesh, state_shardings  # noqa: E402
from tryon_jax.data import samples  # noqa: E402
from tryon_jax.models.spec import ModelSpec  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "viton_acgpn_sample")
VITON_TRAIN_PAIRS = 14221


def bench(config, batch_size: int, iters: int) -> dict:
    spec = ModelSpec.from_dict(config.model)
    mesh = make_mesh()
    batch_size = -(-batch_size // mesh.size) * mesh.size
    pairs = samples.read_pairs(os.path.join(SAMPLE, "test_pairs_same.txt"))
    raw = samples.stack([samples.load_raw(SAMPLE, pairs[i % len(pairs)], "test") for i in range(batch_size)],
                        samples.RAW_KEYS)
    state = train_step.initial_state(config, spec)
    shardings = state_shardings(mesh, state, config.train.shard_params)
    repl = NamedSharding(mesh, P())
    fn = train_step.make_train_step(config, spec, steps_per_epoch=1000, global_batch=batch_size)
    step = jax.jit(fn, in_shardings=(shardings, NamedSharding(mesh, P("data")), repl),
                   out_shardings=(shardings, repl, repl), donate_argnums=(0,))
    state = jax.device_put(state, shardings)
    batch = global_batch(raw, mesh)
    t = time.perf_counter()
    lowered = step.lower(state, batch, {})
    flops = xla_flops(lowered)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t
    state, metrics, _ = compiled(state, batch, {})  # warm-up
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        state, metrics, _ = compiled(state, batch, {})
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t)
    best = min(times)
    return {"batch_size": batch_size, "compile_s": round(compile_s, 1), "step_s_best": round(best, 4),
            "step_s_median": round(float(np.median(times)), 4), "examples_per_s": round(batch_size / best, 2),
            "xla_gflop_per_example": round(flops / batch_size / 1e9, 1),
            "achieved_gflops": round(flops / best / 1e9, 1),
            "viton_epoch_minutes": round(VITON_TRAIN_PAIRS / (batch_size / best) / 60, 1),
            "loss_G_finite": bool(np.isfinite(float(metrics["loss_G"])))}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="demo", choices=["demo", "viton", "hd", "compact", "compact_cpu"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="train.dtype")
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--iters", type=int, default=3)
    args = parser.parse_args()
    config = importlib.import_module(f"configs.{args.config}").get_config()
    config.train.dtype = args.dtype
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(json.dumps(report("train_step", lambda: [bench(config, b, args.iters) for b in sizes],
                            config=args.config, dtype=args.dtype, model=dict(config.model)), indent=1))

if __name__ == "__main__":
    main()
