"""Shared measuring helpers of the benchmark scripts (each prints JSON)."""
import platform
import resource
import time

import jax

from benchmarks.machine import cpu_model, numpy_matmul_gflops


def timed(fn) -> float:
    t = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t


def xla_flops(lowered) -> float:
    """FLOPs of a lowered XLA program from the HLO cost analysis before compilation: the same
    count on every backend (after compilation the GPU backend leaves out convolutions that
    run as cuDNN custom calls)."""
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float((cost or {}).get("flops", float("nan")))


def device_matmul_gflops(n: int = 8192, repeats: int = 5) -> dict | None:
    """The accelerator's own float32 (default precision) and bfloat16 matmul rate; None on CPU."""
    if jax.default_backend() == "cpu":
        return None
    out = {}
    for dtype in ("float32", "bfloat16"):
        a = jax.random.normal(jax.random.key(0), (n, n), dtype)
        f = jax.jit(lambda x: x @ x)
        f(a).block_until_ready()
        out[dtype] = round(2 * n ** 3 / min(timed(lambda: f(a)) for _ in range(repeats)) / 1e9, 1)
    return out


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def report(benchmark: str, run_all, **fields) -> dict:
    """Runs ``run_all()`` (a list of result dicts, with ``achieved_gflops`` where known) between two numpy
    matmul measurements and returns the JSON report: the fractions of this machine's matmul
    rate (and of the accelerator's own, when there is one), the machine and peak RSS."""
    import os
    before = numpy_matmul_gflops()
    runs = run_all()
    after = numpy_matmul_gflops()
    peak = max(before, after)
    device_peak = device_matmul_gflops()
    for r in (r for r in runs if "achieved_gflops" in r):
        r["fraction_of_numpy_matmul"] = round(r["achieved_gflops"] / peak, 3)
        if device_peak:
            r["fraction_of_device_f32_matmul"] = round(r["achieved_gflops"] / device_peak["float32"], 3)
    return {"benchmark": benchmark, **fields, "device": str(jax.devices()[0]), "device_count": jax.device_count(),
            "backend": jax.default_backend(), "cpu_count": os.cpu_count(), "machine": platform.machine(), **cpu_model(),
            "numpy_matmul_gflops": round(peak, 1),
            "numpy_matmul_gflops_before_after": [round(before, 1), round(after, 1)],
            "device_matmul_gflops": device_peak, "runs": runs, "peak_rss_mb": peak_rss_mb(),
            "jax_version": jax.__version__}
