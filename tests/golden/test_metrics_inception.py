"""Inception v3 (torchvision architecture), the Inception Score and FID against the references."""
import numpy as np
import pytest

from tests.golden import golden
from tryon_jax.metrics import fid as fidlib
from tryon_jax.metrics import inception
from tryon_jax.weights import convert, recipe

FOLDER = golden.golden_dir("TRYON_METRICS_GOLDEN", "metrics")


@pytest.fixture(scope="module")
def net():
    golden.require(FOLDER, "inception_manifest.json", "inception_golden.npz", "images.npz", "tolerances.json")
    manifest = golden.load_json(FOLDER / "inception_manifest.json")
    g = golden.load_npz(FOLDER / "inception_golden.npz")
    salt, name = manifest.get("salt", ""), manifest.get("net", "inception_v3")
    sd = {}
    for e in manifest["entries"]:
        value = recipe.recipe_array(name, e["key"], e["shape"], salt)
        if e["key"] == "fc.weight":
            value = value * np.float32(e.get("post_scale", manifest.get("fc_weight_scale", 1)))
        if "sum" in e and e["key"] != "fc.bias":
            np.testing.assert_allclose(value.astype(np.float64).sum(), e["sum"], rtol=1e-6, atol=1e-5, err_msg=e["key"])
        sd[e["key"]] = value
    sd["fc.bias"] = g["fc_bias_centred"]
    variables = convert.inception_variables(sd)
    images = golden.load_npz(FOLDER / "images.npz")["images"]
    tol = golden.load_json(FOLDER / "tolerances.json")["quantities"]
    out = {}
    for mode in ("resize", "noresize"):
        logits, pool3 = [], []
        for i in range(0, len(images), 16):
            lg, p3 = inception.logits_and_pool3(variables, images[i:i + 16], resize=mode == "resize")
            logits.append(np.asarray(lg))
            pool3.append(np.asarray(p3))
        out[mode] = np.concatenate(logits), np.concatenate(pool3)
    return g, tol, out, variables, images


def _softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_logits_pool3_softmax(net):
    g, tol, out, _, _ = net
    cmp = golden.Comparisons()
    for mode in ("resize", "noresize"):
        logits, pool3 = out[mode]
        t = tol[f"inception_logits_{mode}"]
        cmp.close(f"logits_{mode}", logits, g[f"logits_{mode}_f64"], t["f32_atol"], t.get("f32_rtol", 0))
        t = tol[f"inception_pool3_{mode}"]
        cmp.close(f"pool3_{mode}", pool3, g[f"pool3_{mode}_f64"], t["f32_atol"], t.get("f32_rtol", 0))
        cmp.close(f"softmax_{mode}", _softmax(logits), g[f"softmax_{mode}_f64"], tol[f"inception_softmax_{mode}"]["f32_atol"])
    cmp.check(6)


def test_resize_matches_torch_upsample(net):
    g, _, _, _, images = net
    if "resized_input_img0_f64" not in g:
        pytest.skip("no resized input in the golden")
    got = np.asarray(inception.preprocess(images[:1], resize=True))[0]
    want = golden.nhwc(g["resized_input_img0_f64"][None] if g["resized_input_img0_f64"].ndim == 3
                       else g["resized_input_img0_f64"])[0]
    cmp = golden.Comparisons()
    cmp.close("resized input", got, want, 1e-5)
    cmp.check()


def test_inception_score(net):
    _, tol, out, _, _ = net
    info = golden.load_json(FOLDER / "is.json")
    cmp = golden.Comparisons()
    for mode in ("resize", "noresize"):
        probs = _softmax(out[mode][0])
        for key, ref in info[f"{mode}_f64"].items():
            if key.startswith("splits") and key[6:].isdigit():
                mean, std = fidlib.inception_score(probs, int(key[6:]))
                cmp.close(f"IS {mode} {key}", mean, ref["mean"], tol[f"is_{mode}"]["f32_atol"])
                # The std over splits moves by at most the largest split score's error (it is
                # 1-Lipschitz in the sup norm), and the golden puts each split's float32 error
                # below 1e-5: ten times the mean's tolerance covers it.
                cmp.close(f"IS std {mode} {key}", std, ref["std"], 10 * tol[f"is_{mode}"]["f32_atol"])
    check = info.get("formula_check", {})
    for key, ref in check.items():
        if key.startswith("splits") and key[6:].isdigit():
            mean, std = fidlib.inception_score(check["preds"], int(key[6:]))
            cmp.close(f"formula {key}", mean, ref["mean"], 1e-9)
            cmp.close(f"formula std {key}", std, ref["std"], 1e-9)
    cmp.check(4)


def test_fid(net):
    _, tol, out, _, _ = net
    info = golden.load_json(FOLDER / "fid.json")
    feats = golden.load_npz(FOLDER / "fid_features.npz")
    ref = info["features_f64"]
    cmp = golden.Comparisons()
    t = tol["fid_from_given_features"]
    got = fidlib.fid(feats["feats_a_f64"], feats["feats_b_f64"])
    cmp.close("fid from given features", got, ref["fid_a_b_eigh"], t["atol"], t.get("rtol", 0))
    pool3 = out["resize"][1]
    n = len(pool3) // 2
    cmp.close("fid from our features", fidlib.fid(pool3[:n], pool3[n:]), ref["fid_a_b_eigh"], tol["fid"]["f32_atol"])
    if "first16dims" in ref:
        t16 = tol["fid_first16dims"]
        got16 = fidlib.fid(feats["feats_a_f64"][:, :16], feats["feats_b_f64"][:, :16])
        cmp.close("fid first16dims", got16, ref["first16dims"]["eigh"], t16["atol"], t16["rtol"])
    cmp.close("fid self", fidlib.fid(feats["feats_a_f64"], feats["feats_a_f64"]), 0.0, tol["fid_self"]["atol"])
    cmp.check(3)
