"""The recipe weights and the torch<->Flax layout agree with the golden manifest."""
import numpy as np

from tests.golden import golden
from tryon_jax.weights import convert, recipe

FOLDER = golden.golden_dir("TRYON_ACGPN_GOLDEN", "acgpn")


def test_manifest_keys_shapes_and_checksums():
    golden.require(FOLDER, "manifest.json")
    manifest = golden.load_json(FOLDER / "manifest.json")
    nets = tuple(manifest["networks"])
    state_dicts = golden.manifest_state_dicts(FOLDER, nets)
    compared = 0
    for net in nets:
        entries = manifest["networks"][net]["state_dict"]
        layout = convert.acgpn_layout(net)
        assert {e["key"]: tuple(e["shape"]) for e in entries} == layout, net
        for e in entries:
            if e["key"] not in state_dicts[net]:  # computed buffer: rebuild it the way the model does
                assert e["key"] == "stn.tps.target_coordinate_repr"
                from tryon_jax.models import tps
                value = tps.tps_buffers(256, 192)[1]
            else:
                value = state_dicts[net][e["key"]]
            v = value.astype(np.float64)
            np.testing.assert_allclose(v.sum(), e["sum"], rtol=1e-6, atol=1e-6, err_msg=f"{net}/{e['key']}")
            np.testing.assert_allclose((v * v).sum(), e["sum_sq"], rtol=1e-6, err_msg=f"{net}/{e['key']}")
            compared += 1
    assert compared > 0


def test_public_recipe_matches_golden_overrides():
    """Our own recipe (used by the demo, no golden needed) reproduces the golden exceptions."""
    golden.require(FOLDER, "manifest.json", "overrides.npz")
    if golden.load_json(FOLDER / "manifest.json").get("salt", ""):
        import pytest
        pytest.skip("salted golden set: the public recipe is not expected to match")
    overrides = golden.load_npz(FOLDER / "overrides.npz")
    ours = recipe.acgpn_state_dicts(("U",))["U"]
    for key, want in overrides.items():
        tol = 1e-4 if key.endswith("inverse_kernel") else 0  # float32 inverses differ between LAPACKs
        np.testing.assert_allclose(ours[key.split("/", 1)[1]], want, atol=tol * np.abs(want).max(), rtol=0)


def test_flax_torch_roundtrip():
    golden.require(FOLDER, "manifest.json")
    sds = golden.manifest_state_dicts(FOLDER, ("G1", "D1", "VGG19"))
    variables = convert.acgpn_variables(sds)
    for net in ("G1", "D1"):
        back = convert.flax_to_torch(variables[net])
        assert set(back) == set(sds[net])
        for k in back:
            np.testing.assert_array_equal(back[k], sds[net][k])
