"""End to end: the whole jitted try-on from the loader tensors and injected noise, with the two
discrete decisions injected (golden README: the random networks make them chaotic)."""
import numpy as np
import pytest

from tests.golden import golden
from tests.golden.test_acgpn_stages import FOLDER, LOADER, _cases
from tryon_jax.acgpn import inference


@pytest.mark.parametrize("case", _cases())
def test_end_to_end_injected(case):
    golden.require(FOLDER, "inference_inputs.npz", "inference_outputs.npz", "tolerances.json", "manifest.json")
    inputs = golden.load_npz(FOLDER / "inference_inputs.npz")
    outputs = golden.load_npz(FOLDER / "inference_outputs.npz")
    tol = golden.load_json(FOLDER / "tolerances.json")["inference"]["per_array"]
    variables = golden.acgpn_golden_variables(FOLDER, ("U", "G1", "G2", "G"))
    batch = {k: golden.nhwc(inputs[f"{case}/{k}"]) for k in LOADER}
    noise = {k: golden.nhwc(inputs[f"{case}/{k}"]) for k in inference.NOISE_NAMES}
    inject = {k: golden.nhwc(outputs[f"{case}/{k}"]) for k in ("armlabel_map_argmax", "fake_cl_dis_thresh")}
    out = inference.tryon(variables, batch, noise, inject)
    cmp = golden.Comparisons()
    for key, want in outputs.items():
        c, name = key.split("/", 1)
        if c != case or name not in tol:
            continue
        assert name in out, f"tryon() does not return {name}"
        t = tol[name]["end_to_end_injected"]
        got, want = np.asarray(out[name]), golden.nhwc(want, name)
        cmp.close(key, got, want, t["atol_max"], stat="max")
        cmp.close(key, got, want, t["atol_p99.9"], stat="p99.9")
        cmp.close(key, got, want, t["atol_mean"], stat="mean")
    cmp.check(3 * 50)
