"""Person preprocessing speed: ms per photo for pose (BlazePose through LiteRT on the CPU),
parsing (the JAX parser; achieved GFLOP/s from XLA's cost analysis against this machine's
numpy float32 matmul rate in the same run) and the whole prepare step, at batch 1 and 16.
Prints JSON.

    python benchmarks/preprocess.py [--batch-sizes 1,16] [--iters 3] [--photo-size 256x192]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.common import report, xla_flops  # noqa: E402
from tryon_jax.person.parser import HEIGHT, WIDTH, HumanParser  # noqa: E402
from tryon_jax.person.preprocessor import PersonPreprocessor  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "viton_acgpn_sample")


def photos(count: int, size: tuple[int, int]) -> list[np.ndarray]:
    names = sorted(os.listdir(os.path.join(SAMPLE, "test_img")))
    out = []
    for i in range(count):
        img = Image.open(os.path.join(SAMPLE, "test_img", names[i % len(names)])).convert("RGB")
        out.append(np.asarray(img.resize((size[1], size[0]), Image.BICUBIC) if img.size != size[::-1] else img))
    return out


def best_of(fn, iters: int) -> float:
    fn()  # warm-up (compilation, interpreter allocation)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench(pre: PersonPreprocessor, batch_size: int, iters: int, size) -> list[dict]:
    images = photos(batch_size, size)
    framed = np.stack(photos(batch_size, (HEIGHT, WIDTH)))
    pose_s = best_of(lambda: [pre.pose.landmarks33(im) for im in images], iters)
    parser = HumanParser(batch_size=batch_size)
    lowered = parser._predict.lower(parser.params, framed)
    flops = xla_flops(lowered)
    parse_s = best_of(lambda: jax.block_until_ready(parser.parse(framed)), iters)
    pre.parser = parser
    whole_s = best_of(lambda: pre.prepare_batch(images), iters)
    return [
        {"stage": "pose", "batch_size": batch_size, "photo_size": list(size),
         "ms_per_photo": round(1000 * pose_s / batch_size, 2)},
        {"stage": "parsing", "batch_size": batch_size, "ms_per_photo": round(1000 * parse_s / batch_size, 2),
         "xla_gflop_per_photo": round(flops / batch_size / 1e9, 2),
         "achieved_gflops": round(flops / parse_s / 1e9, 1)},
        {"stage": "prepare (load+pose+frame+parse)", "batch_size": batch_size, "photo_size": list(size),
         "ms_per_photo": round(1000 * whole_s / batch_size, 2)},
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--photo-size", default="256x192", help="HxW of the photos given to pose and prepare")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.photo_size.split("x"))
    pre = PersonPreprocessor()
    print(json.dumps(report("preprocess", lambda: [r for b in args.batch_sizes.split(",")
                                                   for r in bench(pre, int(b), args.iters, size)]), indent=1))


if __name__ == "__main__":
    main()
