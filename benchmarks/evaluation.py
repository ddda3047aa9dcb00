"""Evaluation throughput on this machine: SSIM / MS-SSIM and Inception v3 (with the resize to
299) at batch 32, plus one try-on batch, and the projected time for the 2032-pair VITON test
set (paired + unpaired). Random recipe weights (speed does not depend on them). Prints JSON.

    python benchmarks/evaluation.py [--batch-size 32] [--iters 3] [--skip-tryon]
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

from tryon_jax.metrics import inception, ssim  # noqa: E402
from tryon_jax.weights import convert, recipe  # noqa: E402

TEST_PAIRS = 2032


def _best(fn, iters):
    jax.block_until_ready(fn())
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--skip-tryon", action="store_true")
    args = parser.parse_args()
    b = args.batch_size
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (b, 256, 192, 3), dtype=np.uint8)
    y = rng.integers(0, 256, (b, 256, 192, 3), dtype=np.uint8)
    xf, yf = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    t_ssim = _best(lambda: ssim.ssim(xf / 255, yf / 255), args.iters)
    t_ms = _best(lambda: ssim.ms_ssim(xf, yf), args.iters)
    sd = {k: recipe.recipe_array("inception_v3", k, s) for k, s in convert.inception_layout().items()}
    variables = jax.device_put(convert.inception_variables(sd))
    t_inc = _best(lambda: inception.logits_and_pool3(variables, x, resize=True), args.iters)
    result = {"benchmark": "evaluation", "device": str(jax.devices()[0]), "cpu_count": os.cpu_count(),
              "batch_size": b, "ssim_images_per_s": round(b / t_ssim, 1), "ms_ssim_images_per_s": round(b / t_ms, 1),
              "inception_images_per_s": round(b / t_inc, 2)}
    metrics_s = TEST_PAIRS * (1 / result["ssim_images_per_s"] + 1 / result["ms_ssim_images_per_s"]
                              + 2 / result["inception_images_per_s"])  # unpaired fakes + the real reference set
    result["projected_metrics_s_2032_pairs"] = round(metrics_s, 1)
    if not args.skip_tryon:
        from evaluation import evaluate
        from tryon_jax.weights import sources
        sample = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "viton_acgpn_sample")
        pairs = evaluate.PairSet.load(sample, os.path.join(sample, "test_pairs.txt"))
        gen_vars = sources.recipe_variables()
        mesh = evaluate._mesh()
        per = 8
        subset = evaluate.PairSet(pairs.pairs[:per], {k: v[:per] for k, v in pairs.raw.items()},
                                  pairs.difficulty[:per], pairs.real[:per])
        evaluate.generate(gen_vars, subset, per, 0, mesh)
        t = time.perf_counter()
        evaluate.generate(gen_vars, subset, per, 0, mesh)
        pairs_per_s = per / (time.perf_counter() - t)
        result["tryon_pairs_per_s_batch8"] = round(pairs_per_s, 3)
        result["projected_total_s_2032_pairs"] = round(metrics_s + 2 * TEST_PAIRS / pairs_per_s, 1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
