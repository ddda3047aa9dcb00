"""The goldens are float32 outputs of the original PyTorch code on a CPU. On a GPU, XLA's
default precision lets float32 convolutions and matmuls run as TF32 (10-bit mantissa): the
ACGPN generators then differ from the goldens by up to 0.07 (measured on an H200), far
outside tolerances.json. Every golden test therefore runs at full float32 precision, which
changes nothing on a CPU (all 12 stage and end-to-end tests pass this way on an H200)."""
import jax
import pytest


@pytest.fixture(autouse=True)
def full_float32_precision():
    with jax.default_matmul_precision("highest"):
        yield
