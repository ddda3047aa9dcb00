"""SSIM (pytorch-ssim) and MS-SSIM (pytorch_msssim) against the float64 references."""
import jax
import numpy as np

from tests.golden import golden
from tryon_jax.metrics import ssim as metrics

FOLDER = golden.golden_dir("TRYON_METRICS_GOLDEN", "metrics")


def _pairs(info):
    images = golden.load_npz(FOLDER / "images.npz")["images"].astype(np.float32)
    pairs = np.asarray(info["pairs"])
    return images[pairs[:, 0]], images[pairs[:, 1]]


def test_ssim_per_pair_and_maps():
    golden.require(FOLDER, "images.npz", "ssim.json", "tolerances.json")
    info = golden.load_json(FOLDER / "ssim.json")
    tol = golden.load_json(FOLDER / "tolerances.json")["quantities"]
    x, y = _pairs(info)
    cmp = golden.Comparisons()
    got = metrics.ssim(x / 255, y / 255)
    cmp.close("ssim per pair", got, info["ssim_f64"], tol["ssim"]["f32_atol"])
    cmp.close("ssim mean", np.mean(got), info["ssim_mean_f64"], tol["ssim"]["f32_atol"])
    if "ssim_vs_f32_library" in tol:
        cmp.close("ssim vs the f32 library", got, info["ssim_f32_library"], tol["ssim_vs_f32_library"]["f32_atol"])
    if (FOLDER / "ssim_maps.npz").exists():
        maps = golden.load_npz(FOLDER / "ssim_maps.npz")
        pixels = golden.load_npz(FOLDER / "images.npz")["images"]
        # Per pixel, float32 loses up to ~3e-4 to the cancellation in E[x^2] - mu^2 (against
        # C2 = 9e-4), far more than the per-pair mean's tolerance, so the map is checked in
        # float64, where only the implementation can make a difference.
        with jax.enable_x64(True):
            for k, (i, j) in enumerate(maps["pairs"]):
                x, y = (np.asarray(pixels[n:n + 1], np.float64) / 255 for n in (i, j))
                m = metrics.ssim_map(x, y)
                assert m.dtype == np.float64
                cmp.close(f"ssim map {i},{j}", m[0], golden.nhwc(maps["maps_f64"][k:k + 1])[0], 1e-9)
    cmp.check(2)


def test_ms_ssim_variants():
    golden.require(FOLDER, "images.npz", "msssim.json", "tolerances.json")
    info = golden.load_json(FOLDER / "msssim.json")
    atol = golden.load_json(FOLDER / "tolerances.json")["quantities"]["msssim"]["f32_atol"]
    x, y = _pairs(info)
    cmp = golden.Comparisons()
    cmp.close("ms-ssim per pair", metrics.ms_ssim(x, y), info["msssim_f64"], atol)
    if "win7_f64" in info:
        cmp.close("ms-ssim win 7", metrics.ms_ssim(x, y, window=7), info["win7_f64"], atol)
    crop = info.get("odd_crop")
    if crop:
        h, w = crop["level_shapes_input"][0]
        cmp.close("ms-ssim odd crop", metrics.ms_ssim(x[:, :h, :w], y[:, :h, :w]), crop["msssim_f64"], atol)
    if "pytorch_msssim_single_scale_ssim_f64" in info:
        s, _ = metrics.ssim_valid(x, y)
        cmp.close("single-scale ssim (valid)", s.mean(-1), info["pytorch_msssim_single_scale_ssim_f64"], atol)
    cmp.check(2)
