"""The loader reproduces the original data loader's tensors from the encoded source files."""
import pytest

from tests.golden import golden
from tryon_jax import data

FOLDER = golden.golden_dir("TRYON_ACGPN_GOLDEN", "acgpn")


def test_loader_matches_golden_tensors():
    golden.require(FOLDER, "inference_inputs.npz", "sources")
    inputs = golden.load_npz(FOLDER / "inference_inputs.npz")
    cmp = golden.Comparisons()
    for case_dir in sorted((FOLDER / "sources").iterdir()):
        case = case_dir.name
        person = next((case_dir / "test_img").iterdir()).stem
        cloth = next((case_dir / "test_color").iterdir()).stem
        ex = data.load_example(str(case_dir), data.Pair(person + ".jpg", cloth + ".jpg"))
        for key, value in ex.items():
            if f"{case}/{key}" in inputs:
                cmp.close(f"{case}/{key}", value[None], golden.nhwc(inputs[f"{case}/{key}"]), 0)
    if not cmp.rows:
        pytest.skip("no source cases")
    cmp.check(5)
