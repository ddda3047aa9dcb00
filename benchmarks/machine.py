"""This machine's reference numbers, without JAX (benchmarks/torch_unet.py uses them too): the
numpy float32 matmul rate every benchmark compares against, and the CPU's model name."""
import platform
import time

import numpy as np


def _seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def numpy_matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """This machine's float32 matmul rate through numpy (the reference peak of every benchmark)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def cpu_model() -> dict:
    """The CPU's model name (as lscpu prints it) and the vector extensions that matter here."""
    name, flags = platform.processor(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"cpu_model": name, "cpu_isa": [f for f in wanted if f in flags]}
