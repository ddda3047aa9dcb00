"""Which library XLA:CPU runs the networks' convolutions with, chosen per machine.

JAX's XLA:CPU hands convolutions, dots and reductions to YNNPACK by default. At the U-Nets'
shapes its 3x3 convolutions ran slower than XLA's Eigen convolution on the Intel Xeon this was
tuned on (1.58 against 1.32 s per try-on, ``python benchmarks/tryon.py --cpu-conv
eigen,ynnpack``), but CPUs differ, so ``auto`` (the default) times one U-Net convolution with
each library once per process (about half a second) and takes the faster. Dots and reductions
stay on YNNPACK either way. Both compute the same float32 sums in another order: the golden
tests pass with either.

``TRYON_CPU_CONV=eigen|ynnpack|auto`` overrides the choice; it is read when an inference
function is first called. Other backends get no options.
"""
import functools
import os
import time

import jax
import numpy as np

ENV = "TRYON_CPU_CONV"
OPTIONS = {
    "eigen": {"xla_cpu_experimental_ynn_fusion_type":
              "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"},
    "ynnpack": {},
}
CHOICES = ("auto", *OPTIONS)
# The probe: 3x3 convolutions at three levels of the Refine U-Net (batch, height, width, in, out),
# 3.6 GFLOP each.
PROBE_SHAPES = ((1, 256, 192, 64, 64), (1, 64, 48, 256, 256), (1, 16, 12, 1024, 1024))


def _probe(options: dict):
    """A compiled function that runs the probe convolutions once, and its inputs."""
    rng = np.random.default_rng(0)
    inputs = [(rng.standard_normal((b, h, w, cin), np.float32), rng.standard_normal((3, 3, cin, cout), np.float32))
              for b, h, w, cin, cout in PROBE_SHAPES]
    inputs = jax.device_put(inputs)

    def convs(inputs):
        return [jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
                for x, k in inputs]

    return jax.jit(convs).lower(inputs).compile(compiler_options=options), inputs


@functools.lru_cache(maxsize=None)
def measured_choice(repeats: int = 3) -> str:
    """The faster convolution library on this CPU: the probe timed with each, interleaved, best of
    ``repeats`` (once per process, about a second)."""
    probes = {name: _probe(options) for name, options in OPTIONS.items()}
    times = {name: [] for name in probes}
    for _ in range(repeats + 1):
        for name, (fn, inputs) in probes.items():
            t = time.perf_counter()
            jax.block_until_ready(fn(inputs))
            times[name].append(time.perf_counter() - t)
    best = {name: min(t[1:]) for name, t in times.items()}  # the first round warms up
    return min(best, key=best.get)


def choice(conv: str | None = None) -> str:
    """``conv`` (default: $TRYON_CPU_CONV, else auto) resolved to a library name."""
    conv = conv or os.environ.get(ENV) or "auto"
    if conv not in CHOICES:
        raise ValueError(f"{ENV}={conv!r}: the CPU convolution library must be one of {list(CHOICES)}")
    if conv == "auto":
        return measured_choice() if jax.default_backend() == "cpu" else "ynnpack"
    return conv


def compiler_options(conv: str | None = None) -> dict:
    """XLA compiler options for ``choice(conv)`` ({} off the CPU)."""
    return dict(OPTIONS[choice(conv)]) if jax.default_backend() == "cpu" else {}


def _has_float64(tree) -> bool:
    return any(getattr(leaf, "dtype", None) == np.float64 for leaf in jax.tree.leaves(tree))


class _LazyJit:
    """``jax.jit(fn)`` built at the first call or lowering with that moment's
    ``compiler_options()``. Calls with float64 arrays (the equivalence tests) compile with
    XLA's default: without YNNPACK, XLA:CPU's float64 convolutions are naive loops (50x slower)."""

    def __init__(self, fn, kwargs):
        functools.update_wrapper(self, fn)
        self._fn, self._kwargs, self._jitted = fn, kwargs, {}

    def jitted(self, float64: bool = False):
        if float64 not in self._jitted:
            options = {} if float64 else compiler_options()
            self._jitted[float64] = jax.jit(self._fn, compiler_options=options, **self._kwargs)
        return self._jitted[float64]

    def __call__(self, *args, **kwargs):
        return self.jitted(_has_float64((args, kwargs)))(*args, **kwargs)

    def lower(self, *args, **kwargs):
        return self.jitted(_has_float64((args, kwargs))).lower(*args, **kwargs)


def jit(fn=None, **kwargs):
    """``jax.jit`` with ``compiler_options()``; usable as ``@jit`` or ``@jit(static_argnames=...)``."""
    if fn is None:
        return lambda f: _LazyJit(f, kwargs)
    return _LazyJit(fn, kwargs)
