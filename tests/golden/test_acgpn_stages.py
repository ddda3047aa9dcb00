"""Stage by stage: each stage of the inference graph fed with the golden inputs of that stage."""
import functools

import jax
import jax.numpy as jnp
import pytest

from tests.golden import golden
from tryon_jax.acgpn import inference

FOLDER = golden.golden_dir("TRYON_ACGPN_GOLDEN", "acgpn")
LOADER = ("label", "image", "edge", "color", "pose")


def _cases():
    if not (FOLDER / "inference_outputs.npz").exists():
        return ["A"]
    keys = golden.load_npz(FOLDER / "inference_outputs.npz")
    return sorted({k.split("/")[0] for k in keys})


@pytest.fixture(scope="module")
def golden_data():
    golden.require(FOLDER, "inference_inputs.npz", "inference_outputs.npz", "tolerances.json", "manifest.json")
    tol = golden.load_json(FOLDER / "tolerances.json")["inference"]["per_array"]
    variables = golden.acgpn_golden_variables(FOLDER, ("U", "G1", "G2", "G"))
    return golden.load_npz(FOLDER / "inference_inputs.npz"), golden.load_npz(FOLDER / "inference_outputs.npz"), tol, variables


class Stage:
    def __init__(self, golden_data, case):
        self.inputs, self.outputs, self.tol, self.variables = golden_data
        self.case = case
        self.cmp = golden.Comparisons()

    def get(self, name):
        for src in (self.outputs, self.inputs):
            if f"{self.case}/{name}" in src:
                return jnp.asarray(golden.nhwc(src[f"{self.case}/{name}"], name))
        pytest.skip(f"{self.case}/{name} is not in the golden files")

    def compare(self, results: dict):
        for name, got in results.items():
            key = f"{self.case}/{name}"
            if key in self.outputs and name in self.tol:
                self.cmp.close(key, got, golden.nhwc(self.outputs[key], name), self.tol[name]["stage_test"]["atol"],
                               self.tol[name]["stage_test"].get("rtol", 0.0))

    def encoded(self):
        batch = {k: self.get(k) for k in LOADER}
        return batch, inference.encode_inputs(batch)


@functools.partial(jax.jit, static_argnames=("fn",))
def _run(fn, *args):
    return fn(*args)


@pytest.mark.parametrize("case", _cases())
def test_encode_inputs(golden_data, case):
    s = Stage(golden_data, case)
    batch, x = s.encoded()
    s.compare(x)
    for name in ("mask_clothes", "mask_fore", "img_fore", "all_clothes_label"):
        s.cmp.close(f"{case}/{name}", x[name], s.get(name), 0)
    s.cmp.check(10)


@pytest.mark.parametrize("case", _cases())
def test_generators(golden_data, case):
    s = Stage(golden_data, case)
    v = s.variables
    g1 = _run(lambda p, i: inference._apply("G1", p, i), v["G1"], s.get("G1_in"))
    g2 = _run(lambda p, i: inference._apply("G2", p, i), v["G2"], s.get("G2_in"))
    g = _run(inference.image_stage, v["G"], s.get("G_in"))
    s.compare({"arm_label_logits": g1, "fake_cl_logits": g2, **g})
    s.cmp.check(4)


@pytest.mark.parametrize("case", _cases())
def test_discrete_stages(golden_data, case):
    s = Stage(golden_data, case)
    batch, x = s.encoded()
    layout = inference.layout_decision(s.get("arm_label"), batch["label"], x["mask_clothes"])
    mask = inference.mask_decision(s.get("fake_cl"), x["mask_clothes"])
    edits = inference.edit_labels(x, s.get("armlabel_map_argmax"), s.get("fake_cl_dis_thresh"))
    s.compare({**layout, **{k: v for k, v in mask.items() if k != "BCE_G2_x10"}, **edits})
    s.compare({"CE_loss": s.get("CE_loss_G1") + mask["BCE_G2_x10"]})
    s.cmp.check(20)


@pytest.mark.parametrize("case", _cases())
def test_warp_stages(golden_data, case):
    from tryon_jax.models import layers, tps
    from tryon_jax.models.acgpn import Refine
    from tryon_jax.models.tps import BoundedGridLocNet
    s = Stage(golden_data, case)
    u = s.variables["U"]
    loc, state = BoundedGridLocNet().apply({"params": u["params"]["stn"]["loc_net"]}, s.get("locnet_input"),
                                           mutable=["intermediates"])
    loc["locnet_fc1_in"] = state["intermediates"]["cnn"]["locnet_fc1_in"][0]
    row, col = tps.row_col_second_differences(s.get("source_control_points"))
    loc.update(stn_row_second_diff=row, stn_col_second_diff=col)
    grid = tps.tps_grid(s.get("source_control_points"), 256, 192, u["buffers"]["stn"]["tps"]["inverse_kernel"])
    tps_grid = s.get("tps_grid")
    warps = {"warped": layers.grid_sample_canvas(s.get("clothes"), tps_grid),
             "warped_mask": layers.grid_sample_canvas(s.get("pre_clothes_mask"), tps_grid),
             "warped_grid": layers.grid_sample_canvas(s.get("image"), tps_grid),
             "grid_sample_output_mask": layers.grid_sample(jnp.ones_like(s.get("pre_clothes_mask")), tps_grid)}
    body_params = {k: p for k, p in u["params"].items() if k != "stn"}
    raw, state = _run(lambda p, i: Refine(4).apply({"params": p}, i, mutable=["intermediates"]), body_params,
                      jnp.concatenate([s.get("fake_cl_dis"), s.get("warped")], -1))
    comp = inference.compose(s.get("fake_c_unet_raw"), s.get("fake_cl_dis"), s.get("warped"))
    s.compare({**loc, "tps_grid": grid, **warps, "fake_c_unet_raw": raw,
               "U_conv5": state["intermediates"]["conv5"][0], **comp})
    s.cmp.check(20)


@pytest.mark.parametrize("case", _cases())
def test_generator_inputs(golden_data, case):
    s = Stage(golden_data, case)
    batch, x = s.encoded()
    edits = {k: s.get(k) for k in ("bigger_arm1_occ", "bigger_arm2_occ", "fake_cl_dis", "dis_label")}
    s.compare(inference.generator_inputs(x, edits, s.get("fake_c"), batch["image"], s.get("noise_G")))
    s.cmp.check(4)
