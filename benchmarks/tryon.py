"""Try-on throughput: pairs/s, achieved GFLOP/s (XLA cost analysis) against this machine's
numpy float32 matmul rate measured in the same run, compile time and peak RSS. Prints JSON.

    python benchmarks/tryon.py [--batch-sizes 1,8] [--iters 3] [--dtype bfloat16] [--cpu-conv eigen,ynnpack]

--cpu-conv compiles the same graph once per XLA:CPU convolution library (tryon_jax.core.xla_cpu)
and times them in one run.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import report, timed, xla_flops  # noqa: E402
from tryon_jax.acgpn import inference  # noqa: E402
from tryon_jax.core import xla_cpu  # noqa: E402
from tryon_jax.data import samples  # noqa: E402
from tryon_jax.weights import sources  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "viton_acgpn_sample")


def bench(variables, batch_size: int, iters: int, dtype, cpu_conv: str) -> dict:
    pairs = samples.read_pairs(os.path.join(SAMPLE, "test_pairs.txt"))
    examples = [samples.load_example(SAMPLE, pairs[i % len(pairs)]) for i in range(batch_size)]
    batch = jax.device_put(samples.stack(examples))
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(0), i))(jnp.arange(batch_size))

    def fn(v, b, k):
        return inference.tryon_graph(v, b, k, dtype=dtype)["fake_image"]

    t = time.perf_counter()
    lowered = jax.jit(fn).lower(variables, batch, keys)
    flops = xla_flops(lowered)
    compiled = lowered.compile(compiler_options=xla_cpu.compiler_options(cpu_conv))
    compile_s = time.perf_counter() - t
    compiled(variables, batch, keys).block_until_ready()  # warm-up
    times = [timed(lambda: compiled(variables, batch, keys)) for _ in range(iters)]
    best = min(times)
    return {"batch_size": batch_size, "cpu_conv": cpu_conv, "cpu_conv_library": xla_cpu.choice(cpu_conv),
            "compile_s": round(compile_s, 2),
            "step_s_best": round(best, 3), "s_per_pair": round(best / batch_size, 3),
            "step_s_median": round(float(np.median(times)), 3), "pairs_per_s": round(batch_size / best, 3),
            "xla_gflop_per_pair": round(flops / batch_size / 1e9, 1), "achieved_gflops": round(flops / best / 1e9, 1)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--cpu-conv", default="auto", help="comma-separated: " + ",".join(xla_cpu.CHOICES))
    args = parser.parse_args()
    dtype = None if args.dtype == "float32" else jnp.bfloat16
    variables = jax.device_put(sources.recipe_variables())
    print(json.dumps(report("tryon", lambda: [bench(variables, int(b), args.iters, dtype, conv)
                                              for b in args.batch_sizes.split(",")
                                              for conv in args.cpu_conv.split(",")], dtype=args.dtype), indent=1))

if __name__ == "__main__":
    main()
