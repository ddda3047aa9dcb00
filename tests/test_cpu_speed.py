"""The CPU speed-ups change how sums are formed, never what is summed: the phased upsample +
conv and either XLA:CPU convolution library agree with a float64 reference within the
worst-case float32 bound of a sum of n products, gamma_n * sum |x||w| (gamma_n = n u / (1 - n u),
u = 2^-24), whatever the CPU and its thread count."""
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO
from tryon_jax.core import xla_cpu
from tryon_jax.models import layers
from tryon_jax.models.acgpn import Refine

U = 2.0 ** -24
DN = ("NHWC", "HWIO", "NHWC")


def _gamma(n: int) -> float:
    return n * U / (1 - n * U)


def _conv64(x, w):
    """float64 conv of float64 copies, computed by numpy (no XLA)."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    w = np.asarray(w, np.float64)
    h, wd = x.shape[1] - 2, x.shape[2] - 2
    return sum(np.einsum("bhwc,co->bhwo", x[:, i:i + h, j:j + wd], w[i, j]) for i in range(3) for j in range(3))


def _upsample64(x):
    return np.repeat(np.repeat(np.asarray(x, np.float64), 2, 1), 2, 2)


@pytest.mark.parametrize("batch,size", [(1, (4, 3)), (1, (32, 24)), (2, (16, 12))])
def test_upsample_conv_is_upsample_then_conv(batch, size):
    """Both paths (the plain one below PHASED_MIN_PIXELS, the phased one above) against float64.
    The phased sum has 4 * cin terms whose merged weights carry one more rounding (<= 2u relative
    for w0 + w1 + w2 as two additions), so the bound is gamma_(9 cin + 2) * sum |x| |w|."""
    cin, cout = 8, 5
    rng = np.random.default_rng(batch * 100 + size[0])
    x = rng.standard_normal((batch, *size, cin)).astype(np.float32)
    w = rng.standard_normal((3, 3, cin, cout)).astype(np.float32)
    with jax.default_matmul_precision("highest"):
        got = np.asarray(jax.jit(lambda x, w: layers.upsample2x_conv3x3(x, w, (1, 1), ((1, 1), (1, 1))))(x, w))
    up = _upsample64(x)
    want = _conv64(up, w)
    bound = _gamma(9 * cin + 2) * _conv64(np.abs(up), np.abs(w))
    assert got.shape == (batch, 2 * size[0], 2 * size[1], cout)
    assert np.all(np.abs(got - want) <= bound), float(np.max(np.abs(got - want) / bound))


def test_upsample_conv_takes_the_phased_path_only_for_large_inputs():
    """The phased form is one 2x2 convolution with 4x the output channels on the padded input."""
    def kernel_shapes(side):
        jaxpr = jax.make_jaxpr(lambda x, w: layers.upsample2x_conv3x3(x, w, (1, 1), ((1, 1), (1, 1))))(
            jnp.zeros((1, side, side, 4)), jnp.zeros((3, 3, 4, 6)))
        return [e.invars[1].aval.shape for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]

    assert 8 * 8 < layers.PHASED_MIN_PIXELS <= 24 * 24
    assert kernel_shapes(8) == [(3, 3, 4, 6)]
    assert kernel_shapes(24) == [(2, 2, 4, 24)]


def test_refine_up_layers_keep_their_parameters():
    """The up-convolutions are nn.Conv with the torch names, shapes and init: a checkpoint loads
    unchanged and a seed gives the same weights as a plain Conv."""
    variables = jax.jit(Refine(3, ngf=4).init)(jax.random.key(0), jnp.zeros((1, 16, 16, 5)))["params"]
    plain = nn.Conv(8, (3, 3), padding=((1, 1), (1, 1))).init(jax.random.key(7), jnp.zeros((1, 4, 4, 16)))
    phased = layers.upsample_conv(8).init(jax.random.key(7), jnp.zeros((1, 4, 4, 16)))
    assert variables["up6_1"]["kernel"].shape == (3, 3, 64, 32)
    assert set(variables["up9_1"]) == {"kernel", "bias"}
    np.testing.assert_array_equal(plain["params"]["kernel"], phased["params"]["kernel"])


@pytest.mark.parametrize("library", list(xla_cpu.OPTIONS))
def test_each_cpu_conv_library_computes_the_convolution(library):
    """Each library's float32 convolution against float64, within gamma_(9 cin) * sum |x||w|."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 12, 10, 16)).astype(np.float32)
    w = rng.standard_normal((3, 3, 16, 8)).astype(np.float32)
    conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN,
                                                               precision="highest"))
    got = np.asarray(conv.lower(x, w).compile(compiler_options=xla_cpu.compiler_options(library))(x, w))
    bound = _gamma(9 * 16) * _conv64(np.abs(x), np.abs(w))
    assert np.all(np.abs(got - _conv64(x, w)) <= bound)


def test_eigen_option_moves_convolutions_off_ynnpack():
    """The option this module relies on still exists and does what it says in the pinned jaxlib."""
    if jax.default_backend() != "cpu":
        pytest.skip("an XLA:CPU option")
    x, w = jnp.zeros((1, 8, 8, 4)), jnp.zeros((3, 3, 4, 4))
    lowered = jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN)).lower(x, w)
    assert "convolution" in lowered.compile(compiler_options=xla_cpu.compiler_options("eigen")).as_text()
    assert "__ynn_fusion" not in lowered.compile(compiler_options=xla_cpu.compiler_options("eigen")).as_text()


def test_cpu_conv_choice_and_its_errors(monkeypatch):
    assert xla_cpu.measured_choice() in xla_cpu.OPTIONS
    monkeypatch.setenv(xla_cpu.ENV, "ynnpack")
    assert xla_cpu.choice() == "ynnpack"
    monkeypatch.setenv(xla_cpu.ENV, "mkl")
    with pytest.raises(ValueError, match="TRYON_CPU_CONV='mkl'.*auto"):
        xla_cpu.choice()

    @xla_cpu.jit(static_argnames="scale")
    def scaled(x, scale):
        return x * scale

    monkeypatch.setenv(xla_cpu.ENV, "eigen")
    assert float(scaled(jnp.float32(2), scale=3)) == 6.0
    assert scaled.__name__ == "scaled"


def test_a_bad_env_value_fails_the_first_call():
    """TRYON_CPU_CONV is read at the first call: a bad value fails it with the variable's name."""
    code = ("import jax.numpy as jnp\nfrom tryon_jax.core import xla_cpu\n"
            "f = xla_cpu.jit(lambda x: x + 1)\nf(jnp.ones(2))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"TRYON_CPU_CONV": "bogus", "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"})
    assert proc.returncode != 0 and "TRYON_CPU_CONV='bogus'" in proc.stderr
