"""3x3 'SAME' convolutions at the shapes of ACGPN's U-Nets, lowered three ways: XLA's
convolution, im2col (nine shifted slices concatenated, one matmul) and nine shifted matmuls
summed; GFLOP/s per shape and batch size against this machine's numpy float32 matmul rate,
and each lowering's largest difference from XLA's convolution. Prints JSON.

    python benchmarks/conv_lowering.py [--batch-sizes 1,8] [--iters 5]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from benchmarks.common import report, timed  # noqa: E402

# (height, width, in channels, out channels): one per level of the Refine U-Net at 256x192.
SHAPES = ((256, 192, 64, 64), (128, 96, 128, 128), (64, 48, 256, 256), (32, 24, 512, 512), (16, 12, 1024, 1024))


def xla_conv(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _shifted(x):
    b, h, w, c = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return [padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3)]


def im2col(x, w):
    b, h, wd, c = x.shape
    cols = jnp.concatenate(_shifted(x), -1).reshape(b * h * wd, 9 * c)
    return (cols @ w.reshape(9 * c, -1)).reshape(b, h, wd, -1)


def shifted_matmuls(x, w):
    return sum(jnp.einsum("bhwc,cd->bhwd", s, w[k // 3, k % 3]) for k, s in enumerate(_shifted(x)))


LOWERINGS = {"xla_conv": xla_conv, "im2col": im2col, "shifted_matmuls": shifted_matmuls}


def bench(batch_sizes, iters: int) -> list[dict]:
    runs = []
    for b in batch_sizes:
        for h, wd, ci, co in SHAPES:
            x = jnp.asarray(np.random.default_rng(1).standard_normal((b, h, wd, ci), dtype=np.float32))
            w = jnp.asarray((np.random.default_rng(2).standard_normal((3, 3, ci, co)) / np.sqrt(9 * ci))
                            .astype(np.float32))
            flops = 2 * b * h * wd * ci * co * 9
            reference = None
            for name, fn in LOWERINGS.items():
                f = jax.jit(fn)
                out = f(x, w).block_until_ready()
                reference = out if reference is None else reference
                best = min(timed(lambda: f(x, w)) for _ in range(iters))
                runs.append({"lowering": name, "batch_size": b, "shape": [h, wd, ci, co],
                             "step_s_best": round(best, 5), "achieved_gflops": round(flops / best / 1e9, 1),
                             "max_abs_diff_vs_xla_conv": float(jnp.max(jnp.abs(out - reference)))})
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--iters", type=int, default=5)
    args = ap.parse_args()
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(json.dumps(report("conv_lowering", lambda: bench(sizes, args.iters)), indent=1))


if __name__ == "__main__":
    main()
