"""Where try-on time goes: each ACGPN stage (G1 layout, G2 cloth mask, STN+U warp and
composition, G image) jitted alone on the inputs a full try-on gives it, with its XLA FLOPs,
best time and GFLOP/s against this machine's numpy float32 matmul rate measured in the same
run; the discrete edits between the stages are timed as 'edits'. Prints JSON.

    python benchmarks/tryon_stages.py [--batch-size 1] [--iters 5] [--model shipped|recipe]
                                      [--cpu-conv auto,eigen,ynnpack]
"""
import argparse
import functools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.common import report, timed, xla_flops  # noqa: E402
from tryon_jax.acgpn import batches, inference  # noqa: E402
from tryon_jax.core import xla_cpu  # noqa: E402
from tryon_jax.data import loader_ops, samples  # noqa: E402
from tryon_jax.models.spec import ModelSpec  # noqa: E402
from tryon_jax.weights import shipped, sources  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "viton_acgpn_sample")


def stage_functions(spec: ModelSpec) -> dict:
    """name -> (function of (variables, state), the keys of the full graph's outputs it reads)."""
    def g1(v, s):
        return inference.layout_stage(v["G1"], s, s["pose"], s["label"], s["noise_G1"], spec=spec)["arm_label"]

    def g2(v, s):
        return inference.mask_stage(v["G2"], s, s["pose"], s["armlabel_map_argmax"], s["noise_G2"],
                                    spec=spec)["fake_cl"]

    def edits(v, s):
        return inference.edit_labels(s, s["armlabel_map_argmax"], s["fake_cl_dis_thresh"])["armlabel_map"]

    def stn_u(v, s):
        return inference.warp_stage(v["U"], s, s["fake_cl_dis"], s["image"], spec=spec)["fake_c"]

    def g(v, s):
        return inference.image_stage(v["G"], s["G_in"], spec=spec)["fake_image"]

    return {"G1": g1, "G2": g2, "edits": edits, "STN+U": stn_u, "G": g}


def bench(variables, spec: ModelSpec, batch_size: int, iters: int, cpu_conv: str) -> list[dict]:
    pairs = samples.read_pairs(os.path.join(SAMPLE, "test_pairs.txt"))
    raw = samples.stack([samples.load_raw(SAMPLE, pairs[i % len(pairs)]) for i in range(batch_size)],
                        samples.RAW_KEYS)
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(0), i))(jnp.arange(batch_size))
    prepare = jax.jit(lambda r: batches.resize(loader_ops.prepare(r), spec.height, spec.width))
    batch = prepare(raw)
    full = jax.jit(functools.partial(inference.tryon_graph, spec=spec))(variables, batch, keys)
    state = {**batch, **full}
    runs, total, library = [], 0.0, xla_cpu.choice(cpu_conv)
    for name, fn in stage_functions(spec).items():
        lowered = jax.jit(fn).lower(variables, state)
        flops = xla_flops(lowered)
        compiled = lowered.compile(compiler_options=xla_cpu.compiler_options(cpu_conv))
        compiled(variables, state).block_until_ready()
        best = min(timed(lambda: compiled(variables, state)) for _ in range(iters))
        total += best
        runs.append({"stage": name, "batch_size": batch_size, "cpu_conv": library, "step_s_best": round(best, 4),
                     "gflop_per_pair": round(flops / batch_size / 1e9, 2),
                     "achieved_gflops": round(flops / best / 1e9, 1)})
    for r in runs:
        r["share_of_time"] = round(r["step_s_best"] / total, 3)
    return runs + [{"stage": "total", "batch_size": batch_size, "cpu_conv": library, "step_s_best": round(total, 4),
                    "s_per_pair": round(total / batch_size, 4)}]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--model", default="recipe", choices=["recipe", "shipped"],
                    help="recipe: ACGPN's full size with deterministic random weights; shipped: the shipped model")
    ap.add_argument("--cpu-conv", default="auto", help="comma-separated: " + ",".join(xla_cpu.CHOICES))
    args = ap.parse_args()
    if args.model == "shipped":
        variables, spec, _ = shipped.load_model()
    else:
        variables, spec = sources.recipe_variables(), ModelSpec()
    variables = jax.device_put(variables)

    def run_all():
        convs = args.cpu_conv.split(",")
        return [r for conv in convs for r in bench(variables, spec, args.batch_size, args.iters, conv)]

    print(json.dumps(report("tryon_stages", run_all,
                            model=args.model, batch_size=args.batch_size), indent=1))


if __name__ == "__main__":
    main()
