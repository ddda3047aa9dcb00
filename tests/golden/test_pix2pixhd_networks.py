"""pix2pixHD's networks against the upstream classes' outputs (float64 references)."""
import jax
import numpy as np
import pytest

from tests.golden import golden
from tryon_jax.acgpn import losses
from tryon_jax.models import layers
from tryon_jax.models.discriminator import MultiscaleDiscriminator, NLayerDiscriminator
from tryon_jax.models.pix2pixhd import Encoder, GlobalGenerator, LocalEnhancer, instance_edges
from tryon_jax.weights import convert, recipe

FOLDER = golden.golden_dir("TRYON_PIX2PIXHD_GOLDEN", "pix2pixhd")

# The constructors of the golden cases (pix2pixHD argument names in comments).
MODULES = {
    "global_G": GlobalGenerator(3, ngf=64, n_downsampling=4, n_blocks=9, norm="instance"),
    "global_G_small": GlobalGenerator(3, ngf=8, n_downsampling=2, n_blocks=2, norm="instance"),
    "global_G_small_batchnorm": GlobalGenerator(3, ngf=8, n_downsampling=2, n_blocks=2, norm="batch"),
    "local_G": LocalEnhancer(3, ngf=32, n_downsample_global=4, n_blocks_global=9, n_local_enhancers=1,
                             n_blocks_local=3, norm="instance"),
    "encoder": Encoder(3, ngf=16, n_downsampling=4, norm="instance"),
    "nlayer_D": NLayerDiscriminator(n_layers=3, ndf=64, get_interm_feat=False),
    "nlayer_D_interm": NLayerDiscriminator(n_layers=3, ndf=64, get_interm_feat=True),
    "msd_numD2_interm": MultiscaleDiscriminator(num_d=2, get_interm_feat=True),
    "msd_numD3_interm": MultiscaleDiscriminator(num_d=3, get_interm_feat=True),
    "msd_numD2_plain": MultiscaleDiscriminator(num_d=2, get_interm_feat=False),
    "msd_numD3_plain": MultiscaleDiscriminator(num_d=3, get_interm_feat=False),
    "msd_numD2_plain_sigmoid": MultiscaleDiscriminator(num_d=2, get_interm_feat=False, use_sigmoid=True),
}


def _case(name):
    folder = golden.require(FOLDER / name, "manifest.json", "data.npz")
    golden.require(FOLDER, "tolerances.json")
    manifest = golden.load_json(folder / "manifest.json")
    salt = manifest.get("salt", "")
    sd = {e["key"]: recipe.recipe_array(manifest["network"], e["key"], e["shape"], salt,
                                        transposed="ConvTranspose" in e.get("init", ""))
          for e in manifest["state_dict"]}
    for e in manifest["state_dict"][:3]:  # the recipe reproduces the manifest's checksums
        if "sum_f32" in e:
            np.testing.assert_allclose(sd[e["key"]].astype(np.float64).sum(), e["sum_f32"], rtol=1e-6, atol=1e-6)
    data = golden.load_npz(folder / "data.npz")
    tol = golden.load_json(FOLDER / "tolerances.json").get(name, {})
    return sd, data, tol


def _variables(module, sd, *inputs):
    template = jax.eval_shape(module.init, jax.random.key(0), *inputs)
    return convert.torch_to_flax(sd, template, name=type(module).__name__)


def _ref(data, key):
    """The float64 reference when the golden has one, else the stored array."""
    return data.get(f"{key}_f64", data.get(f"{key}_f32", data.get(key)))


@pytest.mark.parametrize("name", ["global_G_small", "global_G_small_batchnorm", "global_G", "local_G"])
def test_generators(name):
    if name == "local_G" and not (FOLDER / name).exists():
        pytest.skip("absent")
    sd, data, tol = _case(name)
    module = MODULES[name]
    x = golden.nhwc(data["input"])
    variables = _variables(module, sd, x)
    out, state = jax.jit(lambda v, x: module.apply(v, x, mutable=["intermediates"]))(variables, x)
    cmp = golden.Comparisons()
    cmp.close(f"{name}/output", out, golden.nhwc(_ref(data, "output")), tol["output"]["recommended_atol_f32"])
    if "coarse_out" in tol:
        coarse = state["intermediates"]["coarse_out"][0]
        cmp.close(f"{name}/coarse_out", coarse, golden.nhwc(data["coarse_out_f64_rounded_to_f32"]),
                  tol["coarse_out"]["recommended_atol_f32"])
    if "input_downsampled_f64" in data:
        cmp.close(f"{name}/input_downsampled", layers.avg_pool3s2_exclude_pad(x),
                  golden.nhwc(data["input_downsampled_f64"]), 1e-6)
    cmp.check()


def test_encoder_instance_pooling():
    sd, data, tol = _case("encoder")
    module = MODULES["encoder"]
    image, inst = golden.nhwc(data["image"]), golden.nhwc(data["inst_map"])
    variables = _variables(module, sd, image, inst)
    out, state = jax.jit(lambda v, a, b: module.apply(v, a, b, mutable=["intermediates"]))(variables, image, inst)
    cmp = golden.Comparisons()
    cmp.close("encoder/raw", state["intermediates"]["raw"][0], golden.nhwc(_ref(data, "raw")),
              tol["raw"]["recommended_atol_f32"])
    cmp.close("encoder/output", out, golden.nhwc(_ref(data, "output")), tol["output"]["recommended_atol_f32"])
    cmp.check(2)


def test_get_edges():
    folder = golden.require(FOLDER / "get_edges", "data.npz")
    data = golden.load_npz(folder / "data.npz")
    cmp = golden.Comparisons()
    cmp.close("get_edges/edges", instance_edges(golden.nhwc(data["inst_map"])), golden.nhwc(data["edges"]), 0)
    cmp.check()


@pytest.mark.parametrize("name", [n for n in MODULES if "_D" in n])
def test_discriminators(name):
    sd, data, tol = _case(name)
    module = MODULES[name]
    real, fake = golden.nhwc(data["input_real"]), golden.nhwc(data.get("input_fake", data["input_real"]))
    variables = _variables(module, sd, real)
    run = jax.jit(module.apply)
    cmp = golden.Comparisons()
    if name.startswith("nlayer"):
        feats = run(variables, real)  # the golden stores only the final map in full
        key = f"feat{len(feats) - 1}"
        cmp.close(f"{name}/{key}", feats[-1], golden.nhwc(_ref(data, "output")), tol[key]["recommended_atol_f32"])
        cmp.check()
        return
    results = {"real": run(variables, real), "fake": run(variables, fake)}
    for which, res in results.items():
        for i, scale in enumerate(res):
            for j, feat in enumerate(scale):
                key = f"{which}_out{i}_feat{j}"
                if key in tol and (f"{key}_f64" in data or f"{key}_f32" in data):
                    cmp.close(f"{name}/{key}", feat, golden.nhwc(_ref(data, key)), tol[key]["recommended_atol_f32"])
    out = golden.load_json(FOLDER / name / "outputs.json")["losses"]
    gan = losses.vanilla_gan_loss if module.use_sigmoid else losses.lsgan_loss
    kind = "vanilla" if module.use_sigmoid else "lsgan"
    computed = {f"{kind}_D_real": gan(results["real"], True), f"{kind}_D_fake": gan(results["fake"], False),
                f"{kind}_G_fake_is_real": gan(results["fake"], True)}
    if module.get_interm_feat:
        computed["feat_match"] = losses.feature_matching_loss(results["fake"], results["real"], module.n_layers, 10.0)
    for key, got in computed.items():
        if f"{key}_f64" in out:
            cmp.close(f"{name}/loss_{key}", got, out[f"{key}_f64"], tol[f"loss_{key}"]["recommended_atol_f32"])
    cmp.check(4)


def test_units_float64():
    folder = golden.require(FOLDER / "units", "data.npz")
    d = golden.load_npz(folder / "data.npz")
    with jax.enable_x64(True):
        x = golden.nhwc(d["x"])
        cmp = golden.Comparisons()
        cmp.close("reflection_pad3", layers.reflect_pad(x, 3), golden.nhwc(d["reflection_pad3"]), 1e-12)
        cmp.close("reflection_pad1", layers.reflect_pad(x, 1), golden.nhwc(d["reflection_pad1"]), 1e-12)
        cmp.close("avgpool_exclpad", layers.avg_pool3s2_exclude_pad(x), golden.nhwc(d["avgpool3s2p1_exclpad"]), 1e-12)
        cmp.close("instnorm", layers.instance_norm(x), golden.nhwc(d["instnorm"]), 1e-9)
        cmp.close("leaky_relu", layers.leaky_relu(x), golden.nhwc(d["leaky_relu_0.2"]), 1e-12)
        conv_t = layers.ConvTranspose(4)
        w = convert.torch_to_flax({"m.weight": d["convT_weight_in_out_kh_kw"], "m.bias": d["convT_bias"]},
                                  dtype=np.float64)
        out = conv_t.apply({"params": w["params"]["m"]}, x)
        cmp.close("convT", out, golden.nhwc(d["convT_out"]), 1e-9)
        conv = layers.conv(4, 4, 2, 2)
        w = convert.torch_to_flax({"m.weight": d["convk4s2p2_weight_out_in_kh_kw"], "m.bias": d["convk4s2p2_bias"]},
                                  dtype=np.float64)
        out = conv.apply({"params": w["params"]["m"]}, x)
        cmp.close("conv k4 s2 p2", out, golden.nhwc(d["convk4s2p2_out"]), 1e-9)
        p = d["bce_p"]
        cmp.close("bce target 1", losses.bce_probabilities(p, 1.0), d["bce_target1_elementwise"], 1e-9)
        cmp.close("bce target 0", losses.bce_probabilities(p, 0.0), d["bce_target0_elementwise"], 1e-9)
        cmp.check(9)
