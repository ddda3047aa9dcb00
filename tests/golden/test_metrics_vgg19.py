"""VGG19 slices and the perceptual loss against torchvision (metrics golden, float64 references)."""
import jax
import numpy as np

from tests.golden import golden
from tryon_jax.acgpn import losses
from tryon_jax.models.vgg import VGG19
from tryon_jax.weights import convert, recipe

FOLDER = golden.golden_dir("TRYON_METRICS_GOLDEN", "metrics")
SLICES = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _variables():
    manifest = golden.load_json(FOLDER / "vgg19_manifest.json")
    salt = manifest.get("salt", "")
    sd = {e["key"]: recipe.recipe_array(manifest.get("net", "vgg19"), e["key"], e["shape"], salt)
          for e in manifest["entries"]}
    for e in manifest["entries"]:
        np.testing.assert_allclose(sd[e["key"]].astype(np.float64).sum(), e["sum"], rtol=1e-6, atol=1e-6)
    return convert.vgg19_variables(sd)  # also drops features.30+ like a full torchvision dict


def _images():
    return golden.load_npz(FOLDER / "images.npz")["images"].astype(np.float32) / 255 * 2 - 1


def test_vgg19_slices_on_crops():
    golden.require(FOLDER, "vgg19_manifest.json", "vgg19_golden.npz", "images.npz", "tolerances.json")
    g = golden.load_npz(FOLDER / "vgg19_golden.npz")
    tol = golden.load_json(FOLDER / "tolerances.json")["quantities"]
    r0, r1, c0, c1 = (int(v) for v in g["crop_rows_cols"])
    x = _images()[g["image_indices"]][:, r0:r1, c0:c1]
    feats = jax.jit(VGG19().apply)(_variables(), x)
    cmp = golden.Comparisons()
    for name, f in zip(SLICES, feats):
        t = tol.get(f"vgg_crop_{name}", tol["vgg_crop_relu5_1"])
        cmp.close(f"crop_{name}", f, golden.nhwc(g[f"crop_{name}_f64"]), t["f32_atol"], t.get("f32_rtol", 0.0))
    cmp.check(5)


def test_vgg_loss_per_pair_and_batch():
    golden.require(FOLDER, "vgg19_manifest.json", "vgg19_loss.json", "images.npz", "tolerances.json")
    info = golden.load_json(FOLDER / "vgg19_loss.json")
    atol = golden.load_json(FOLDER / "tolerances.json")["quantities"]["vgg_loss"]["f32_atol"]
    pairs = np.asarray(info["pairs"])
    images = _images()
    variables = _variables()
    loss = jax.jit(losses.vgg_loss)
    cmp = golden.Comparisons()
    for (i, j), want in zip(pairs, info["loss_per_pair_f64"]):
        cmp.close(f"pair {i},{j}", loss(variables, images[i:i + 1], images[j:j + 1]), want, atol)
    cmp.close("batch of 8", loss(variables, images[pairs[:, 0]], images[pairs[:, 1]]), info["loss_batch8_f64"], atol)
    cmp.check(len(pairs) + 1)
