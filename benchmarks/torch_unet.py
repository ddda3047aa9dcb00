"""The PyTorch side of the CPU speed comparison: ACGPN's four Refine U-Nets (G1 37->14, G2 37->1,
U 4->4, G 24->3 at 256x192, ngf 64; 99% of a try-on's FLOPs) written in torch from the same
layer list as tryon_jax.models.acgpn.Refine, in eval mode under torch.inference_mode, timed
per network with torch's default CPU backend. Everything else the original does between
them (STN, TPS, grid_sample, label edits) is left out, so this is a lower bound on the
original's time per try-on; compare it with benchmarks/tryon_stages.py's total in the same
session. Needs torch (not a dependency of tryon-jax). Prints JSON.

    python benchmarks/torch_unet.py [--batch-size 1] [--iters 5] [--threads N]
"""
import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks.machine import cpu_model, numpy_matmul_gflops  # noqa: E402

NETWORKS = {"G1": (37, 14), "G2": (37, 1), "U": (4, 4), "G": (24, 3)}


def conv_in_relu(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.InstanceNorm2d(cout), nn.ReLU()]


class RefineUNet(nn.Module):
    """Five levels of [conv3x3, IN, ReLU] x 2 with max-pool; nearest x2 upsampling + conv3x3,
    IN, ReLU; the skip concatenated first; a final conv3x3."""

    def __init__(self, cin, cout, ngf=64):
        super().__init__()
        widths = [ngf, 2 * ngf, 4 * ngf, 8 * ngf, 16 * ngf]
        self.down = nn.ModuleList()
        prev = cin
        for w in widths:
            self.down.append(nn.Sequential(*conv_in_relu(prev, w), *conv_in_relu(w, w)))
            prev = w
        self.up, self.merge = nn.ModuleList(), nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *conv_in_relu(prev, w)))
            self.merge.append(nn.Sequential(*conv_in_relu(2 * w, w), *conv_in_relu(w, w)))
            prev = w
        self.out = nn.Conv2d(ngf, cout, 3, padding=1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(nn.functional.max_pool2d(x, 2) if i else x)
            skips.append(x)
        y = skips.pop()
        for up, merge in zip(self.up, self.merge):
            y = merge(torch.cat([skips.pop(), up(y)], 1))
        return self.out(y)


def unet_flops(cin, cout, height=256, width=192, ngf=64) -> float:
    """Multiply-adds x 2 of the U-Net's convolutions (the count XLA reports for the direct form)."""
    total, prev, pixels = 0.0, cin, height * width
    widths = [ngf * m for m in (1, 2, 4, 8, 16)]
    for level, w in enumerate(widths):
        p = pixels / 4 ** level
        total += 2 * 9 * p * (prev * w + w * w)
        prev = w
    for level, w in zip(range(3, -1, -1), reversed(widths[:-1])):
        p = pixels / 4 ** level
        total += 2 * 9 * p * (prev * w + 2 * w * w + w * w)
        prev = w
    return total + 2 * 9 * pixels * ngf * cout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    before = numpy_matmul_gflops()
    runs, total = [], 0.0
    torch.manual_seed(0)
    for name, (cin, cout) in NETWORKS.items():
        net = RefineUNet(cin, cout).eval()
        x = torch.randn(args.batch_size, cin, 256, 192)
        with torch.inference_mode():
            net(x)
            times = []
            for _ in range(args.iters):
                t = time.perf_counter()
                net(x)
                times.append(time.perf_counter() - t)
        best = min(times)
        total += best
        flops = unet_flops(cin, cout) * args.batch_size
        runs.append({"network": name, "step_s_best": round(best, 4),
                     "gflop_per_pair": round(flops / args.batch_size / 1e9, 2),
                     "achieved_gflops": round(flops / best / 1e9, 1)})
    peak = max(before, numpy_matmul_gflops())
    for r in runs:
        r["fraction_of_numpy_matmul"] = round(r["achieved_gflops"] / peak, 3)
    print(json.dumps({"benchmark": "torch_unet", "batch_size": args.batch_size, "torch_version": torch.__version__,
                      "torch_threads": torch.get_num_threads(),
                      "four_unets_s_per_pair": round(total / args.batch_size, 4),
                      "numpy_matmul_gflops": round(peak, 1), "machine": platform.machine(), **cpu_model(),
                      "numpy_version": np.__version__, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
