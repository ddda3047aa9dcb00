"""The human parser: augmentation geometry, heatmap targets and decoding, parsing metrics,
the weights file, and a short training run on the shipped samples with resume."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tryon_jax.metrics import parsing
from tryon_jax.models.parser import Parser
from tryon_jax.person import parser as parser_lib
from tryon_jax.person.training import parser_augment as aug
from tryon_jax.person.training import parser_train

H, W = 64, 48


def _example(seed=0):
    rng = np.random.default_rng(seed)
    image = rng.uniform(size=(H, W, 3)).astype(np.float32)
    label = np.zeros((H, W), np.int32)
    label[10:20, 5:15] = 11  # left arm, on the image's left
    label[30:40, 30:40] = 5  # a shoe
    keypoints = np.zeros((18, 3), np.float32)
    keypoints[2] = (10.0, 15.0, 0.9)  # right shoulder
    keypoints[5] = (35.0, 35.0, 0.8)  # left shoulder
    return jnp.asarray(image), jnp.asarray(label), jnp.asarray(keypoints)


def test_mirror_swaps_sides_and_is_an_involution():
    image, label, kp = _example()
    mi, ml, mk = aug.mirror(image, label, kp)
    assert int(ml[15, W - 1 - 10]) == 13 and int(ml[35, W - 1 - 35]) == 6  # left arm -> right arm, shoe 5 -> 6
    np.testing.assert_allclose(mk[5], [W - 1 - 10.0, 15.0, 0.9])  # the right shoulder is now the left one
    np.testing.assert_allclose(mk[2], [W - 1 - 35.0, 35.0, 0.8])
    assert float(jnp.abs(mk[np.array([0, 1, 3])]).sum()) == 0  # missing points stay (0, 0, 0)
    back = aug.mirror(mi, ml, mk)
    for a, b in zip(back, (image, label, kp)):
        np.testing.assert_array_equal(a, b)


def test_warp_moves_pixels_and_keypoints_together():
    image, label, kp = _example()
    same = aug.warp(image, label, kp, aug.affine(1.0, 0.0, jnp.zeros(2), H, W))
    np.testing.assert_allclose(same[0], image, atol=1e-5)
    np.testing.assert_array_equal(same[1], label)
    m = aug.affine(0.7, 0.1, jnp.array([3.0, -4.0]), H, W)
    img, lab, moved, valid = aug.warp(image, label, kp, m)
    # the arm blob's centre moves where the matrix sends it
    centre = np.array([9.5, 14.5])
    target = np.asarray(m[:, :2] @ centre + m[:, 2])
    ys, xs = np.nonzero(np.asarray(lab) == 11)
    assert abs(xs.mean() - target[0]) < 0.75 and abs(ys.mean() - target[1]) < 0.75
    np.testing.assert_allclose(moved[2, :2], m[:, :2] @ kp[2, :2] + m[:, 2], atol=1e-4)
    assert not bool(valid.all())  # shrunk: the border comes from outside the photo
    far = aug.warp(image, label, kp, aug.affine(1.0, 0.0, jnp.array([100.0, 0.0]), H, W))
    assert int(far[1].max()) == 0 and float(jnp.abs(far[2]).sum()) == 0  # everything left the frame


def test_augment_and_off_distribution_shapes_and_ranges():
    image, label, kp = _example()
    source = jnp.full((H, W, 3), 0.3)
    for seed in range(3):
        x, y, k = aug.augment(jax.random.key(seed), image, label, kp, source)
        assert x.shape == (H, W, 3) and y.shape == (H, W) and k.shape == (18, 3)
        assert 0 <= float(x.min()) and float(x.max()) <= 1
        assert set(np.unique(np.asarray(y)).tolist()) <= {0, 5, 6, 11, 13}
    for kind in ("clean",) + aug.OFF_DISTRIBUTION:
        x, y, k = aug.off_distribution(kind, image, label, kp, source)
        assert x.shape == (H, W, 3) and y.shape == (H, W)
    with pytest.raises(ValueError, match="unknown off-distribution"):
        aug.off_distribution("fog", image, label, kp, source)


def test_heatmaps_round_trip_to_keypoints():
    kp = np.zeros((1, 18, 3), np.float32)
    kp[0, 0] = (100.3, 41.7, 1.0)
    kp[0, 7] = (13.0, 220.5, 0.5)
    maps = parser_train.heatmap_targets(jnp.asarray(kp), 256, 192, sigma=1.5)
    assert maps.shape == (1, 64, 48, 18) and float(maps[..., 1].max()) == 0
    found = np.asarray(parser_lib.keypoints_from_heatmaps(maps))
    assert np.abs(found[0, [0, 7], :2] - kp[0, [0, 7], :2]).max() < 1.0
    assert np.all(found[0, 1] == 0) and found[0, 0, 2] > 0.9


def test_scores_and_pck():
    target = np.array([[0, 0, 4, 4], [5, 6, 9, 10]])
    pred = np.array([[0, 4, 4, 4], [6, 5, 10, 10]])
    s = parsing.scores(parsing.confusion(jnp.asarray(pred), jnp.asarray(target)))
    assert s["iou"]["shoes"] == 1.0  # left and right shoe are one class for scoring
    assert s["iou"]["background"] == 0.5 and s["iou"]["upper_clothes"] == pytest.approx(2 / 3)
    assert s["iou"]["legs"] == 1.0 and np.isnan(s["iou"]["hair"])
    assert s["foreground_iou"] == pytest.approx(6 / 7)
    t = np.zeros((1, 18, 3))
    t[0, 1], t[0, 8], t[0, 0] = (50, 50, 1), (50, 150, 1), (50, 20, 1)  # torso 100 px
    p = t.copy()
    p[0, 0, 0] += 9  # within 10 px
    p[0, 8, 0] += 11  # beyond
    assert parsing.pck(p, t) == (2, 3)


def test_class_weights_favour_rare_labels():
    labels = [np.zeros((8, 8), np.uint8) for _ in range(3)]
    labels[0][:4] = 4
    labels[1][:1, :1] = 5
    w = parser_train.class_weights([{"label": x[..., None]} for x in labels], 3, 0.5, (0.2, 10.0))
    assert w[5] > w[4] > w[0] and w[2] == 10.0  # never seen: the largest weight


def test_weights_file_round_trip_and_refusals(tmp_path):
    model = Parser((8, 8, 16, 16, 16))
    params = model.init(jax.random.key(1), jnp.zeros((1, 256, 192, 3)))["params"]
    path = tmp_path / "parser.npz"
    parser_train.save_weights(str(path), params, {"widths": [8, 8, 16, 16, 16]})
    loaded, meta = parser_lib.load_weights(path)
    assert meta["widths"] == [8, 8, 16, 16, 16]
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(params)):
        np.testing.assert_allclose(a, np.asarray(b, np.float16).astype(np.float32))
    hp = parser_lib.HumanParser(path, batch_size=2)
    images = np.random.default_rng(0).integers(0, 255, (3, 256, 192, 3), dtype=np.uint8)
    labels, keypoints = hp.parse(images)
    assert labels.shape == (3, 256, 192) and labels.dtype == np.uint8 and keypoints.shape == (3, 18, 3)
    with pytest.raises(ValueError, match="expected"):
        hp.parse(images[:, :128])
    with pytest.raises(FileNotFoundError, match="configs/parser.py"):
        parser_lib.load_weights(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a parser weights file"):
        parser_lib.load_weights(tmp_path / "bad.npz")
    (tmp_path / "bad.json").write_text(json.dumps({"widths": [8, 8, 16, 16, 32]}))
    parser_train.save_weights(str(tmp_path / "other.npz"), params, {"widths": [8, 8, 16, 16, 32]})
    with pytest.raises(ValueError, match="do not fit"):
        parser_lib.load_weights(tmp_path / "other.npz")


def test_training_runs_resumes_and_writes_weights(tmp_path):
    """Four steps in two runs (2 + resume to 4) end where one run of 4 steps ends."""
    from configs import parser as parser_config

    def run(workdir, steps):
        config = parser_config.get_config()
        config.data.name = "viton/acgpn"
        config.data.manual_dir = "data/viton_acgpn_sample"
        config.data.split = "test"
        config.data.tfds_data_dir = str(tmp_path / "tfds")
        config.batch_size = 2
        config.parser.update(widths=(8, 8, 16, 16, 16), num_steps=steps, warmup_steps=1, weight_examples=4,
                             eval_every=2, eval_examples=2, log_every=1, picture_every=2, checkpoint_every=2)
        return parser_train.train_and_evaluate(config, str(workdir))

    a = run(tmp_path / "a", 2)
    assert int(a.step) == 2
    a = run(tmp_path / "a", 4)
    b = run(tmp_path / "b", 4)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(x, y)
    lines = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [d["step"] for d in lines if "loss" in d] == [1, 2, 3, 4]
    assert any("eval/clutter/foreground_iou" in d for d in lines)
    assert (tmp_path / "a" / "samples" / "parser_00000004.png").is_file()
    meta = json.loads((tmp_path / "a" / "parser.json").read_text())
    assert meta["step"] == 4 and meta["eval"]["clean"]["pixels"] == 2 * 256 * 192
    parser_lib.load_weights(tmp_path / "a" / "parser.npz")


def test_flip_prediction_is_mirror_symmetric():
    """With test-time flip, parsing the mirrored photo gives the mirrored labels (left/right
    swapped) exactly, also with a rescaled view; without it a random network does not."""
    from tryon_jax.models.parser import LABEL_MIRROR, predict
    model = Parser((8, 8, 16, 16, 16), input_pool=2)
    image = jax.random.uniform(jax.random.key(0), (2, 256, 192, 3), minval=-1, maxval=1)
    params = model.init(jax.random.key(1), image)["params"]
    params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.key(2), p.shape), params)
    for flip, scales, symmetric in ((True, (1.0,), True), (True, (1.0, 1.25), True), (False, (1.0,), False)):
        a, _ = predict(model, params, image, flip, scales=scales)
        b, _ = predict(model, params, image[:, :, ::-1], flip, scales=scales)
        same = np.mean(np.asarray(LABEL_MIRROR[np.asarray(b)][:, :, ::-1]) == np.asarray(a))
        assert (same == 1.0) == symmetric, (flip, scales, same)


class _PixelEcho:
    """A stand-in network whose logits (all labels alike) are its input's first channel:
    shows where each output pixel of a rescaled view came from."""
    widths, input_pool = (8,) * 5, 2  # inputs must be multiples of 64

    def apply(self, variables, x):
        assert x.shape[1] % 64 == 0 and x.shape[2] % 64 == 0, x.shape
        return {"label_logits": jnp.repeat(x[..., :1], 14, -1), "heatmaps": x[:, ::4, ::4, :1]}


@pytest.mark.parametrize("scale", [1.25, 1.5, 0.75])
def test_rescaled_view_lines_up_with_the_photo(scale):
    """A view at another scale (resized, edge-padded to the network's multiple, cropped and
    resized back) maps every pixel back to where it was: a ramp comes back as the ramp."""
    from tryon_jax.models.parser import _rescaled_logits, log_probs
    y, x = np.mgrid[0:256, 0:192].astype(np.float32)
    image = jnp.asarray(np.stack([x / 192 + y / 512, y / 256, x / 192], -1)[None])
    back = np.asarray(_rescaled_logits(_PixelEcho(), None, image, scale))
    assert back.shape == (1, 256, 192, 14)
    inner = (slice(None), slice(8, -8), slice(8, -8), 0)
    np.testing.assert_allclose(back[inner], np.asarray(image)[inner], atol=1e-3)  # < 0.2 pixel
    lp, heatmaps = log_probs(_PixelEcho(), None, image, scales=(1.0, scale))
    assert lp.shape == (1, 256, 192, 14) and heatmaps.shape == (1, 64, 48, 1)


def test_test_time_scales_are_checked():
    from tryon_jax.models.parser import check_scales
    from tryon_jax.person.training.parser_calibrate import parse_scales
    assert check_scales([1, 1.25]) == (1.0, 1.25) and parse_scales("1, 1.25,") == (1.0, 1.25)
    for bad in ([], [1.25, 1.0], [1.0, 3.0], [1.0, 0.25], "ab", None):
        with pytest.raises(ValueError, match="test-time scales"):
            check_scales(bad)
    with pytest.raises(ValueError, match="not comma-separated numbers"):
        parse_scales("1,x")


def test_warm_start_takes_the_file_grows_it_and_refuses_another_network(tmp_path):
    model = Parser((8, 8, 16, 16, 16), input_pool=2)
    x = jax.random.uniform(jax.random.key(0), (2, 256, 192, 3), minval=-1, maxval=1)
    trained = model.init(jax.random.key(3), x)["params"]
    trained = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(6), p.shape), trained)
    path = str(tmp_path / "p.npz")
    parser_train.save_weights(path, trained, {"widths": [8, 8, 16, 16, 16], "input_pool": 2})
    as_saved = jax.tree.map(lambda p: np.asarray(p, np.float16).astype(np.float32), trained)
    started = parser_train.warm_start(model.init(jax.random.key(4), x)["params"], path, model)
    for a, b in zip(jax.tree.leaves(started), jax.tree.leaves(as_saved)):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    # A deeper network (residual blocks added) starts as the file's network, output for output.
    deeper = Parser((8, 8, 16, 16, 16), input_pool=2, extra_blocks=(0, 1, 2))
    grown = parser_train.warm_start(deeper.init(jax.random.key(4), x)["params"], path, deeper)
    assert {"res1_0", "res2_0", "res2_1"} <= set(grown)
    want, got = model.apply({"params": as_saved}, x), deeper.apply({"params": grown}, x)
    for k in want:
        np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]))
    # The grown file loads by its metadata, and can grow again but not shrink back.
    grown_path = str(tmp_path / "grown.npz")
    parser_train.save_weights(grown_path, grown, {"widths": [8, 8, 16, 16, 16], "input_pool": 2,
                                                  "extra_blocks": [0, 1, 2]})
    loaded, meta = parser_lib.load_weights(grown_path)
    assert Parser.from_meta(meta) == deeper
    deepest = Parser((8, 8, 16, 16, 16), input_pool=2, extra_blocks=(1, 1, 2, 0, 1))
    parser_train.warm_start(deepest.init(jax.random.key(4), x)["params"], grown_path, deepest)
    with pytest.raises(ValueError, match="not the config's network"):
        parser_train.warm_start(trained, grown_path, model)
    other = Parser((8, 8, 16, 16, 32), input_pool=2)
    with pytest.raises(ValueError, match="not the config's network"):
        parser_train.warm_start(other.init(jax.random.key(4), x)["params"], path, other)
    with pytest.raises(ValueError, match="extra_blocks"):
        Parser((8, 8, 16, 16, 16), extra_blocks=(1,) * 6).init(jax.random.key(4), x)


def test_label_bias_fit_undoes_an_over_predicted_label():
    from tryon_jax.person.training.parser_calibrate import fit_label_bias, objective
    rng = np.random.default_rng(0)
    labels = rng.choice([0, 1, 4], size=(8, 32, 32))
    log_p = np.full((8, 32, 32, 14), -8.0, np.float32)
    log_p[..., [0, 1, 4]] = rng.normal(0, 0.5, (8, 32, 32, 3))
    np.put_along_axis(log_p, labels[..., None], 1.0 + np.take_along_axis(log_p, labels[..., None], -1), -1)
    fair = objective(parsing.confusion(jnp.argmax(log_p, -1), labels))
    log_p[..., 1] += 1.5  # hair now wins most pixels
    log_p[..., 5] += 9.0  # and a shoe (never in the labels) some others
    bias, history = fit_label_bias(log_p, labels)
    assert history == sorted(history) and history[0] < fair - 0.2
    assert history[-1] >= fair - 0.005
    assert bias[1] - (bias[0] + bias[4]) / 2 < -1.0
    assert bias[5] < -0.4 and bias[5] == bias[6]  # mirrored labels move together


def test_predict_adds_the_label_bias():
    from tryon_jax.models.parser import log_probs, predict
    model = Parser((8, 8, 16, 16, 16), input_pool=2)
    image = jax.random.uniform(jax.random.key(0), (1, 256, 192, 3), minval=-1, maxval=1)
    params = model.init(jax.random.key(1), image)["params"]
    plain, _ = predict(model, params, image, True)
    np.testing.assert_array_equal(plain, jnp.argmax(log_probs(model, params, image, True)[0], -1))
    bias = np.zeros(14, np.float32)
    bias[12] = 100.0
    assert np.all(np.asarray(predict(model, params, image, True, bias)[0]) == 12)


def test_calibrate_cli_writes_bias_flip_and_scales_that_the_parser_uses(tmp_path):
    from tryon_jax.data import input_pipeline
    from tryon_jax.person.training import parser_calibrate
    data_dir = str(tmp_path / "tfds")
    input_pipeline.ensure_dataset("viton/acgpn", data_dir, "data/viton_acgpn_sample")
    model = Parser((8, 8, 16, 16, 16), input_pool=2)
    params = model.init(jax.random.key(1), jnp.zeros((1, 256, 192, 3)))["params"]
    path = tmp_path / "parser.npz"
    parser_train.save_weights(str(path), params, {"widths": [8, 8, 16, 16, 16], "input_pool": 2, "step": 7})
    argv = ["--weights", str(path), "--data_dir", data_dir, "--name", "viton/acgpn", "--split", "test"]
    assert parser_calibrate.main(argv + ["--count", "4", "--flip", "off", "--scales", "1,1.25"]) == 0
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["step"] == 7 and meta["test_time_flip"] is False and len(meta["label_bias"]) == 14
    assert meta["test_time_scales"] == [1.0, 1.25]
    assert any(meta["label_bias"])  # a random network's argmax is far from the labels' mix
    record = meta["calibration"]
    assert record["photos"] == 4 and record["dataset"] == "viton/acgpn:test"
    after = (record["miou_common_after"] + record["miou_main_after"]) / 2
    assert after >= (record["miou_common_before"] + record["miou_main_before"]) / 2
    hp = parser_lib.HumanParser(path, batch_size=2)
    assert hp.flip is False and hp.scales == (1.0, 1.25)
    image = np.random.default_rng(0).integers(0, 255, (1, 256, 192, 3), dtype=np.uint8)
    from tryon_jax.models.parser import log_probs
    with jax.enable_x64(True):  # the reference: what the file asks for, computed in float64
        f64 = jax.tree.map(lambda x: np.asarray(x, np.float64), hp.params)
        lp, _ = log_probs(model, f64, image.astype(np.float64) / 127.5 - 1, False, (1.0, 1.25))
        lp = np.asarray(lp[0]) + np.asarray(meta["label_bias"], np.float32)
    top2 = np.sort(lp, -1)[..., -2:]
    # Where the top two labels are 1e-3 apart, float32's error in the log-probabilities (about
    # depth x u32 x their size, < 1e-4 for this small net) cannot swap them.
    decided = top2[..., 1] - top2[..., 0] > 1e-3
    assert decided.mean() > 0.98
    np.testing.assert_array_equal(hp.parse(image)[0][0][decided], lp.argmax(-1)[decided])
    assert (lp.argmax(-1) != (lp - np.asarray(meta["label_bias"], np.float32)).argmax(-1)).mean() > 0.01  # bias used
    assert parser_calibrate.main(argv + ["--count", "0"]) == 2
    assert parser_calibrate.main(argv + ["--scales", "1.25,1"]) == 2
    path.with_suffix(".json").write_text(json.dumps({**meta, "test_time_scales": [1.0, "big"]}))
    with pytest.raises(ValueError, match="parser.json: test-time scales"):
        parser_lib.load_weights(path)
    meta["label_bias"] = [0.0] * 13 + ["x"]
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="label_bias must be 14 finite numbers"):
        parser_lib.load_weights(path)
