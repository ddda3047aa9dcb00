"""3x3 'SAME' convolutions at the shapes of ACGPN's U-Nets, lowered three ways: XLA's
convolution, im2col (nine shifted slices concatenated, one matmul) and nine shifted matmuls
summed; and the U-Nets' up-convolutions (nearest x2 upsampling, then a 3x3 convolution) as
written and phased (tryon_jax.models.layers.phased_upsample2x_conv3x3). Each is compiled with
each XLA:CPU convolution library asked for (tryon_jax.core.xla_cpu). GFLOP/s (of the direct
form's FLOPs) per shape and batch size against this machine's numpy float32 matmul rate, and
each lowering's largest difference from the first. Prints JSON.

    python benchmarks/conv_lowering.py [--batch-sizes 1,8] [--iters 5] [--cpu-conv eigen,ynnpack]
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
from tryon_jax.core import xla_cpu  # noqa: E402
from tryon_jax.models import layers  # noqa: E402

# (height, width, in channels, out channels): one per level of the Refine U-Net at 256x192.
SHAPES = ((256, 192, 64, 64), (128, 96, 128, 128), (64, 48, 256, 256), (32, 24, 512, 512), (16, 12, 1024, 1024))
# The up-convolutions' inputs (before upsampling): up9_1, up8_1, up7_1, up6_1.
UP_SHAPES = ((128, 96, 128, 64), (64, 48, 256, 128), (32, 24, 512, 256), (16, 12, 1024, 512))


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


def upsample_then_conv(x, w):
    return xla_conv(layers.upsample_nearest2x(x), w)


LOWERINGS = {"xla_conv": xla_conv, "im2col": im2col, "shifted_matmuls": shifted_matmuls}
UP_LOWERINGS = {"upsample_then_conv": upsample_then_conv, "phased": layers.phased_upsample2x_conv3x3}


def bench(lowerings, shapes, upsampled: bool, batch_sizes, iters: int, libraries) -> list[dict]:
    runs = []
    for b in batch_sizes:
        for h, wd, ci, co in shapes:
            x = jnp.asarray(np.random.default_rng(1).standard_normal((b, h, wd, ci), dtype=np.float32))
            w = jnp.asarray((np.random.default_rng(2).standard_normal((3, 3, ci, co)) / np.sqrt(9 * ci))
                            .astype(np.float32))
            flops = 2 * b * h * wd * ci * co * 9 * (4 if upsampled else 1)
            reference = None
            for library in libraries:
                for name, fn in lowerings.items():
                    f = jax.jit(fn).lower(x, w).compile(compiler_options=xla_cpu.compiler_options(library))
                    out = f(x, w).block_until_ready()
                    reference = out if reference is None else reference
                    best = min(timed(lambda: f(x, w)) for _ in range(iters))
                    runs.append({"lowering": name, "cpu_conv": library, "batch_size": b, "shape": [h, wd, ci, co],
                                 "upsampled_2x": upsampled, "step_s_best": round(best, 5),
                                 "achieved_gflops": round(flops / best / 1e9, 1),
                                 "max_abs_diff_vs_first": float(jnp.max(jnp.abs(out - reference)))})
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--cpu-conv", default="eigen,ynnpack", help="comma-separated: " + ",".join(xla_cpu.CHOICES))
    args = ap.parse_args()
    sizes, libraries = [int(b) for b in args.batch_sizes.split(",")], args.cpu_conv.split(",")

    def run_all():
        return (bench(LOWERINGS, SHAPES, False, sizes, args.iters, libraries)
                + bench(UP_LOWERINGS, UP_SHAPES, True, sizes, args.iters, libraries))

    print(json.dumps(report("conv_lowering", run_all), indent=1))


if __name__ == "__main__":
    main()
