"""modules.npz: every standalone module of ACGPN against the original's outputs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.golden import golden
from tryon_jax.acgpn import losses
from tryon_jax.models import layers, tps
from tryon_jax.models.acgpn import Refine
from tryon_jax.models.networks import acgpn_module

FOLDER = golden.golden_dir("TRYON_ACGPN_GOLDEN", "acgpn")


@pytest.fixture(scope="module")
def data():
    golden.require(FOLDER, "modules.npz", "tolerances.json", "manifest.json")
    return golden.load_npz(FOLDER / "modules.npz"), golden.load_json(FOLDER / "tolerances.json")["modules"]


def _atol(tol, key):
    """The golden's tolerance for ``key``; a missing one is an error, not a silent 0."""
    if key not in tol:
        raise KeyError(f"tolerances.json has no module tolerance for {key!r}")
    return tol[key]["atol"]


def _present(d, prefix):
    keys = [k for k in d if k.startswith(prefix)]
    if not keys:
        pytest.skip(f"no {prefix} arrays in modules.npz")
    return keys


def test_refine_and_unet_body(data):
    d, tol = data
    cmp = golden.Comparisons()
    for test, net, out_nc in [("refine_G1_128x96", "G1", 14), ("refine_G2_128x96", "G2", 1),
                              ("refine_G_128x96", "G", 3), ("unet_body_U_128x96", "U", 4)]:
        if f"{test}/input" not in d:
            continue
        variables = golden.acgpn_golden_variables(FOLDER, (net,))[net]
        params = {k: v for k, v in variables["params"].items() if k != "stn"}
        out = jax.jit(Refine(out_nc).apply)({"params": params}, golden.nhwc(d[f"{test}/input"]))
        cmp.close(f"{test}/output", out, golden.nhwc(d[f"{test}/output"]), _atol(tol, f"{test}/output"))
    cmp.check()


def test_locnet(data):
    d, tol = data
    _present(d, "locnet/")
    cmp = golden.Comparisons()
    from tryon_jax.models.tps import BoundedGridLocNet
    params = golden.acgpn_golden_variables(FOLDER, ("U",))["U"]["params"]["stn"]["loc_net"]
    out = jax.jit(BoundedGridLocNet().apply)({"params": params}, golden.nhwc(d["locnet/input"]))
    cmp.close("locnet/fc2_out", out["locnet_fc2_out"], d["locnet/fc2_out"], _atol(tol, "locnet/fc2_out"))
    cmp.close("locnet/coor", out["source_control_points"], d["locnet/coor"], _atol(tol, "locnet/coor"))
    for name in ("rx_loss", "ry_loss", "cx_loss", "cy_loss"):
        cmp.close(f"locnet/{name}", out[name], d[f"locnet/{name}"], _atol(tol, f"locnet/{name}"))
    cmp.close("locnet/target_control_points", tps.target_control_points(), d["locnet/target_control_points"], 0)
    cmp.check(7)


def test_locnet_constraints(data):
    d, tol = data
    _present(d, "locnet_constraints/")
    cmp = golden.Comparisons()
    coor = jnp.asarray(d["locnet_constraints/coor"])
    row, col = tps.row_col_second_differences(coor)
    grad_row, grad_col = tps.row_col_collinearity(coor)
    for name, got in [("get_row", row), ("get_col", col), ("grad_row", grad_row), ("grad_col", grad_col)]:
        key = f"locnet_constraints/{name}"
        cmp.close(key, got, d[key], _atol(tol, key))
    cmp.check(4)


def test_tps_grid(data):
    d, tol = data
    _present(d, "tps/")
    cmp = golden.Comparisons()
    variables = golden.acgpn_golden_variables(FOLDER, ("U",))["U"]
    inverse = variables["buffers"]["stn"]["tps"]["inverse_kernel"]
    grid = tps.tps_grid(jnp.asarray(d["tps/source_control_points"]), 256, 192, inverse)
    cmp.close("tps/grid", grid, d["tps/grid"], _atol(tol, "tps/grid"))
    identity = tps.tps_grid(jnp.asarray(tps.target_control_points())[None], 256, 192, inverse)
    cmp.close("tps/grid_identity_points", identity, d["tps/grid_identity_points"],
              _atol(tol, "tps/grid_identity_points"))
    cmp.check(2)


def test_grid_sample(data):
    d, tol = data
    _present(d, "grid_sample/")
    cmp = golden.Comparisons()
    image, grid = golden.nhwc(d["grid_sample/input"]), jnp.asarray(d["grid_sample/grid"])
    results = {
        "grid_sample/repo_canvas0_out": layers.grid_sample_canvas(image, grid),
        "grid_sample/repo_nocanvas_out": layers.grid_sample(image, grid),
        "grid_sample/torch_align_corners_False": layers.grid_sample(image, grid),
        "grid_sample/ones_mask_out": layers.grid_sample(jnp.ones_like(image), grid),
    }
    for key, got in results.items():
        if key in d:
            cmp.close(key, got, golden.nhwc(d[key]), _atol(tol, key))
    cmp.check(3)


def test_morphology(data):
    d, _ = data
    _present(d, "morpho/")
    cmp = golden.Comparisons()
    x = golden.nhwc(d["morpho/input"])
    np.testing.assert_array_equal(d["morpho/kernel_3x3_ellipse"], [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    cmp.close("morpho/dilate_1", layers.dilate_cross(x, 1), golden.nhwc(d["morpho/dilate_1"]), 0)
    cmp.close("morpho/dilate_10", layers.dilate_cross(x, 10), golden.nhwc(d["morpho/dilate_10"]), 0)
    if "morpho/erode_2" in d:
        cmp.close("morpho/erode_2", layers.erode_cross(x, 2), golden.nhwc(d["morpho/erode_2"]), 0)
    cmp.check(2)


def test_discrete_label(data):
    d, _ = data
    _present(d, "discrete_label/")
    cmp = golden.Comparisons()
    x = golden.nhwc(d["discrete_label/input"])
    label_map = jnp.argmax(x, axis=-1)[..., None].astype(jnp.float32)
    cmp.close("discrete_label/label_map", label_map, golden.nhwc(d["discrete_label/label_map"]), 0)
    cmp.close("discrete_label/onehot", layers.one_hot(label_map, x.shape[-1]),
              golden.nhwc(d["discrete_label/onehot"]), 0)
    cmp.check(2)


@pytest.mark.parametrize("net", ["D1", "D2", "D", "D3"])
def test_multiscale_discriminator(data, net):
    d, tol = data
    test = f"disc_{net}_64x48"
    if f"{test}/input" not in d:
        pytest.skip(f"{test} not in modules.npz")
    cmp = golden.Comparisons()
    variables = golden.acgpn_golden_variables(FOLDER, (net,))[net]
    results = jax.jit(acgpn_module(net).apply)(variables, golden.nhwc(d[f"{test}/input"]))
    for i, scale in enumerate(results):
        for j, feat in enumerate(scale):
            key = f"{test}/out_result{i}_layer{j}"
            cmp.close(key, feat, golden.nhwc(d[key]), _atol(tol, key))
    cmp.check(10)


def test_disc_downsample(data):
    d, tol = data
    _present(d, "disc_downsample/")
    cmp = golden.Comparisons()
    out = layers.avg_pool3s2_exclude_pad(golden.nhwc(d["disc_downsample/input"]))
    cmp.close("disc_downsample/output", out, golden.nhwc(d["disc_downsample/output"]),
              _atol(tol, "disc_downsample/output"))
    cmp.check()


def test_vgg19_and_vgg_loss(data):
    d, tol = data
    _present(d, "vgg19_64x48/")
    cmp = golden.Comparisons()
    variables = golden.acgpn_golden_variables(FOLDER, ("VGG19",))["VGG19"]
    feats = jax.jit(acgpn_module("VGG19").apply)(variables, golden.nhwc(d["vgg19_64x48/input"]))
    for i, f in enumerate(feats, 1):
        key = f"vgg19_64x48/h_relu{i}"
        cmp.close(key, f, golden.nhwc(d[key]), _atol(tol, key))
    if "vgg_loss_64x48/x" in d:
        x, y = golden.nhwc(d["vgg_loss_64x48/x"]), golden.nhwc(d["vgg_loss_64x48/y"])
        cmp.close("vgg_loss_64x48/VGGLoss", losses.vgg_loss(variables, x, y), d["vgg_loss_64x48/VGGLoss"],
                  _atol(tol, "vgg_loss_64x48/VGGLoss"))
        cmp.close("vgg_loss_64x48/VGGLoss_warp", losses.vgg_loss_warp(variables, x, y),
                  d["vgg_loss_64x48/VGGLoss_warp"], _atol(tol, "vgg_loss_64x48/VGGLoss_warp"))
    cmp.check(5)


def test_cross_entropy_and_bce(data):
    d, tol = data
    cmp = golden.Comparisons()
    if "ce2d/loss" in d:
        got = losses.cross_entropy2d(golden.nhwc(d["ce2d/input_probs"]), jnp.asarray(d["ce2d/target"]))
        cmp.close("ce2d/loss", got, d["ce2d/loss"], _atol(tol, "ce2d/loss"))
    if "bce/loss" in d:
        got = losses.bce_with_logits(golden.nhwc(d["bce/input_probs"]), golden.nhwc(d["bce/target"]))
        cmp.close("bce/loss", got, d["bce/loss"], _atol(tol, "bce/loss"))
    cmp.check()
