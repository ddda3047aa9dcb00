"""Human-parser speed: inference ms per photo for each test-time augmentation (none, flip,
flip + a 1.25x view, and the weights file's own if it is another) and the training step (configs/parser.py, augmentation
on device included) in steps/s, with achieved GFLOP/s from XLA's cost analysis against this
machine's numpy float32 matmul rate (and the accelerator's own, if any) in the same run, and
the minutes 4000 training steps take at that rate. Prints JSON.

    python benchmarks/parser.py [--batch-sizes 1,16] [--train-batch-sizes 16] [--iters 3]
        [--variant gpu]
"""
import argparse
import importlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from benchmarks.common import report, xla_flops  # noqa: E402
from tryon_jax.models.parser import Parser, check_scales, predict  # noqa: E402
from tryon_jax.person.parser import HEIGHT, WIDTH, load_weights  # noqa: E402
from tryon_jax.person.training import parser_train  # noqa: E402


def best_of(fn, args, iters: int) -> tuple[float, float]:
    """(compile + first call seconds, best of ``iters`` calls) of a jitted function."""
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return first, min(times)


def bench_inference(params, meta: dict, batch_size: int, iters: int) -> list[dict]:
    model = Parser.from_meta(meta)
    bias = meta.get("label_bias")
    images = jax.random.uniform(jax.random.key(0), (batch_size, HEIGHT, WIDTH, 3), minval=-1, maxval=1)
    out = []
    committed = (bool(meta.get("test_time_flip")), check_scales(meta.get("test_time_scales", (1.0,))))
    views = {"none": (False, (1.0,)), "flip": (True, (1.0,)), "flip+1.25x": (True, (1.0, 1.25))}
    if committed not in views.values():
        views["committed"] = committed
    for name, (flip, scales) in views.items():
        fn = jax.jit(lambda p, x, flip=flip, scales=scales: predict(model, p, x, flip, bias, scales))
        flops = xla_flops(fn.lower(params, images))
        first, best = best_of(fn, (params, images), iters)
        out.append({"stage": "parse", "test_time": name, "flip": flip, "scales": list(scales),
                    "batch_size": batch_size, "compile_s": round(first, 1),
                    "ms_per_photo": round(1000 * best / batch_size, 3),
                    "xla_gflop_per_photo": round(flops / batch_size / 1e9, 2),
                    "achieved_gflops": round(flops / best / 1e9, 1)})
    return out


def bench_training(config, batch_size: int, iters: int) -> dict:
    pc = config.parser
    model = Parser(tuple(pc.widths), pc.input_pool, tuple(pc.extra_blocks))
    schedule = optax.constant_schedule(pc.lr)
    step_fn, tx = parser_train.make_step(config, model, schedule)
    params = model.init(jax.random.key(0), jnp.zeros((1, HEIGHT, WIDTH, 3)))["params"]
    state = parser_train.ParserState(jnp.zeros((), jnp.int32), params, tx.init(params))
    rng = np.random.default_rng(0)
    raw = {"image": rng.integers(0, 256, (batch_size, HEIGHT, WIDTH, 3), dtype=np.uint8),
           "color": rng.integers(0, 256, (batch_size, HEIGHT, WIDTH, 3), dtype=np.uint8),
           "label": rng.integers(0, 14, (batch_size, HEIGHT, WIDTH, 1), dtype=np.uint8),
           "pose_keypoints": np.concatenate([rng.uniform(0, 190, (batch_size, 18, 2)),
                                             np.ones((batch_size, 18, 1))], -1).astype(np.float32)}
    raw = jax.device_put(raw)
    weights = jnp.ones((14,), jnp.float32)
    step = jax.jit(step_fn, donate_argnums=(0,))
    t = time.perf_counter()
    lowered = step.lower(state, raw, weights)
    flops = xla_flops(lowered)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t
    state, metrics, _ = compiled(state, raw, weights)  # warm-up
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        state, metrics, _ = compiled(state, raw, weights)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t)
    best = min(times)
    return {"stage": "train_step", "extra_blocks": list(pc.extra_blocks), "batch_size": batch_size,
            "compile_s": round(compile_s, 1), "step_s_best": round(best, 4),
            "step_s_median": round(float(np.median(times)), 4), "steps_per_s": round(1 / best, 2),
            "xla_gflop_per_example": round(flops / batch_size / 1e9, 2),
            "achieved_gflops": round(flops / best / 1e9, 1),
            "minutes_per_4000_steps": round(4000 * best / 60, 1),
            "loss_finite": bool(np.isfinite(float(metrics["loss"])))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", help="parser .npz (default: the committed weights)")
    ap.add_argument("--batch-sizes", default="1,16", help="inference batch sizes ('' to skip)")
    ap.add_argument("--train-batch-sizes", default="16", help="training batch sizes ('' to skip)")
    ap.add_argument("--variant", default="gpu", help="configs/parser.py variant for the training step")
    ap.add_argument("--iters", type=int, default=3)
    args = ap.parse_args()
    params, meta = load_weights(args.weights)
    params = jax.device_put(params)
    config = importlib.import_module("configs.parser").get_config(args.variant)
    sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    train_sizes = [int(b) for b in args.train_batch_sizes.split(",") if b]

    def run_all():
        runs = [r for b in sizes for r in bench_inference(params, meta, b, args.iters)]
        return runs + [bench_training(config, b, args.iters) for b in train_sizes]

    print(json.dumps(report("parser", run_all, weights=args.weights or "committed", train_variant=args.variant),
                     indent=1))


if __name__ == "__main__":
    main()
