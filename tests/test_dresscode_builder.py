"""The Dress Code TFDS builder on its synthesised dummy data (lower_body), read back with tfds.data_source and
grain; bad files fail with a DataError naming them, or are skipped and counted by the lenient configs."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, build_tfds
from tryon_datasets.dresscode import DressCode, dresscode
from tryon_datasets.viton import Viton
from tryon_datasets.viton.viton import LIP_TO_ACGPN
from tryon_jax.data import input_pipeline, samples

DUMMY = REPO / "datasets" / "dresscode" / "dummy_data"
FOLDER = DUMMY / "lower_body"
TRAIN, TEST = ("000101", "000102", "000103"), ("000201", "000202", "000203")


def _build(config, manual_dir, data_dir):
    return build_tfds(DressCode, config, manual_dir, data_dir)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    _build("lower_body", DUMMY, data_dir)
    _build("lower_body_512", FOLDER, data_dir)  # the category folder itself is accepted too
    return data_dir


def _load(data_dir, split, config="lower_body", pairing="paired"):
    """person id -> DecodeExample's arrays, read with the grain loader."""
    loader = input_pipeline.create_loader(f"dress_code/{config}", split, 1, data_dir=str(data_dir), pairing=pairing,
                                          shuffle=False, num_epochs=1)
    return {str(b["person_id"][0]): {k: v[0] for k, v in b.items()} for b in loader}


def _atr(pid, size):
    return np.asarray(Image.open(FOLDER / "label_maps" / f"{pid}_4.png").resize(size, Image.Resampling.NEAREST))


def _raw_keypoints(pid):
    return np.array(json.loads((FOLDER / "keypoints" / f"{pid}_2.json").read_text())["keypoints"])


def test_features_are_vitons(tmp_path):
    dc = DressCode(config="lower_body", data_dir=str(tmp_path)).info.features
    assert str(dc) == str(Viton(config="acgpn", data_dir=str(tmp_path)).info.features)
    big = DressCode(config="dresses_512", data_dir=str(tmp_path)).info.features
    assert big["image"].shape == (512, 384, 3) and big["unpaired_cloth"]["mask"].shape == (512, 384, 1)
    assert DressCode.name == "dress_code"


def test_atr_to_acgpn_table():
    want = {0: 0, 1: 0, 2: 1, 3: 0, 4: 4, 5: 8, 6: 8, 7: 7, 8: 8, 9: 6, 10: 5, 11: 12, 12: 10, 13: 9, 14: 11,
            15: 13, 16: 0, 17: 0}
    assert dict(enumerate(dresscode.ATR_TO_ACGPN.tolist())) == want
    # The classes ATR shares with LIP map as the VITON builder's LIP lookup maps them (ATR id: LIP id).
    shared = {1: 1, 2: 2, 3: 4, 4: 5, 6: 9, 7: 6, 9: 18, 10: 19, 12: 16, 13: 17, 14: 14, 15: 15, 17: 11}
    assert all(dresscode.ATR_TO_ACGPN[a] == LIP_TO_ACGPN[lip] for a, lip in shared.items())


@pytest.mark.parametrize("split, persons", [("train", TRAIN), ("test", TEST)])
def test_splits_read_with_grain(built, split, persons):
    paired, unpaired = _load(built, split), _load(built, split, pairing="unpaired")
    assert sorted(paired) == [f"{p}_0" for p in persons]
    lists = {"train": "train_pairs.txt", "test": "test_pairs_unpaired.txt"}
    others = {p.person[:-4]: p.cloth[:-4] for p in samples.read_pairs(str(FOLDER / lists[split]))}
    for pid, ex in paired.items():
        assert ex["image"].shape == ex["color"].shape == (256, 192, 3)
        assert ex["label"].shape == ex["edge"].shape == (256, 192, 1)
        assert ex["image"].dtype == ex["label"].dtype == ex["edge"].dtype == np.uint8
        assert ex["pose_keypoints"].shape == (18, 3) and ex["pose_boxes"].shape == (18, 4)
        assert ex["label"].max() < samples.NUM_LABELS and set(np.unique(ex["edge"])) <= {0, 255}
        assert input_pipeline.DIFFICULTIES[ex["difficulty"]] == "unknown"
        assert str(ex["cloth_id"]) == pid[:-2] + "_1"
        assert str(unpaired[pid]["cloth_id"]) == others[pid]
    if split == "train":
        assert all(others[pid] == pid[:-2] + "_1" for pid in paired)  # train: the unpaired cloth is the paired one


def test_labels_photos_and_masks(built):
    examples = {**_load(built, "train"), **_load(built, "test")}
    seen = set()
    for pid, ex in examples.items():
        atr = _atr(pid[:-2], (192, 256))
        seen |= set(np.unique(atr).tolist())
        np.testing.assert_array_equal(ex["label"][..., 0], dresscode.ATR_TO_ACGPN[atr], err_msg=pid)
        with Image.open(FOLDER / "images" / f"{pid}.jpg") as photo:
            want = np.asarray(photo.convert("RGB").resize((192, 256), Image.Resampling.BOX), np.float32)
        assert np.abs(ex["image"] - want).mean() < 2, pid  # area-averaged (JPEG quality 95)
        garment = ex["color"].min(axis=2) < 230
        mask = ex["edge"][..., 0] > 0
        assert (mask & garment).sum() / (mask | garment).sum() > 0.95, pid
    assert seen == set(range(18))  # every ATR class went through the lookup


def test_photo_of_the_frame_size_keeps_its_bytes(built):
    source = input_pipeline.data_source("dress_code/lower_body", "train", str(built))
    ex = next(source[i] for i in range(len(source)) if source[i]["person_id"] == b"000102_0")
    assert ex["image"] == (FOLDER / "images" / "000102_0.jpg").read_bytes()  # 192x256 already: not re-encoded


def test_keypoints_scaled_from_the_384x512_frame(built):
    small, big = {**_load(built, "train"), **_load(built, "test")}, _load(built, "test", config="lower_body_512")
    for pid, ex in small.items():
        raw = _raw_keypoints(pid[:-2])
        missing = (raw[:, 2] <= 0) | (raw[:, 0] < 0) | ((raw[:, 0] == 0) & (raw[:, 1] == 0))
        want = np.concatenate([raw[:, :2] / 2, raw[:, 2:3]], axis=1)
        want[missing] = 0
        np.testing.assert_allclose(ex["pose_keypoints"], want, rtol=1e-6, err_msg=pid)
        if pid in big:
            np.testing.assert_allclose(big[pid]["pose_keypoints"], want * [2, 2, 1], rtol=1e-6, err_msg=pid)
    np.testing.assert_array_equal(small["000101_0"]["pose_keypoints"][17], 0)  # (-1, -1), confidence 0
    np.testing.assert_array_equal(small["000102_0"]["pose_keypoints"][16], 0)  # (0, 0), confidence > 0
    nose = small["000103_0"]["pose_keypoints"][0]
    assert nose[0] > 0 and nose[1] == 0 and nose[2] > 0  # on the top border: kept
    assert small["000101_0"]["pose_keypoints"][1, 2] > 1  # confidence kept as is


def test_512_config(built):
    for pid, ex in _load(built, "test", config="lower_body_512", pairing="unpaired").items():
        assert ex["image"].shape == ex["color"].shape == (512, 384, 3)
        assert ex["label"].shape == ex["edge"].shape == (512, 384, 1)
        np.testing.assert_array_equal(ex["label"][..., 0], dresscode.ATR_TO_ACGPN[_atr(pid[:-2], (384, 512))])


@pytest.mark.parametrize("breakage, message", [
    ("missing_image", "file not found"),
    ("bad_label", r"label values \[18, 40\] are outside the 18 ATR classes"),
    ("not_3_4", r"image is 100x100 \(WxH\), not 3:4"),
    ("no_unpaired_line", "no line for the person 000202_0.jpg"),
])
def test_bad_files_fail_or_are_skipped(tmp_path, breakage, message):
    manual = tmp_path / "DressCode"
    shutil.copytree(FOLDER, manual / "lower_body")
    folder = manual / "lower_body"
    culprit = {"missing_image": folder / "images" / "000203_0.jpg",
               "bad_label": folder / "label_maps" / "000202_4.png",
               "not_3_4": folder / "images" / "000201_0.jpg",
               "no_unpaired_line": folder / "test_pairs_unpaired.txt"}[breakage]
    if breakage == "missing_image":
        culprit.unlink()
    elif breakage == "bad_label":
        with Image.open(culprit) as img:
            a, palette = np.array(img), img.getpalette()
        a[5, 5], a[6, 6] = 18, 40
        img = Image.frombytes("P", (a.shape[1], a.shape[0]), a.tobytes())
        img.putpalette(palette)
        img.save(culprit)
    elif breakage == "not_3_4":
        Image.new("RGB", (100, 100), "white").save(culprit, format="JPEG")
    else:
        culprit.write_text("".join(line for line in culprit.read_text().splitlines(True) if "000202_0" not in line))
    with pytest.raises(samples.DataError, match=message) as info:
        _build("lower_body", manual, tmp_path / "strict")
    assert str(culprit) in str(info.value)
    assert not list((tmp_path / "strict").glob("dress_code/lower_body/1.0.0/*.array_record*"))
    builder = _build("lower_body_lenient", manual, tmp_path / "lenient")
    assert builder.info.splits["test"].num_examples == 2 and builder.info.splits["train"].num_examples == 3
    meta = json.loads((Path(builder.data_dir) / "metadata.json").read_text())
    assert meta["skipped"]["test"]["count"] == 1 and str(culprit) in meta["skipped"]["test"]["reasons"][0]


def test_manual_dir_must_hold_the_category(tmp_path):
    with pytest.raises(FileNotFoundError, match="this is the lower_body folder, the config wants dresses"):
        _build("dresses", FOLDER, tmp_path)
    with pytest.raises(FileNotFoundError, match="no dresses/ folder"):
        _build("dresses", DUMMY, tmp_path)


def test_ensure_dataset_builds_dress_code(tmp_path):
    data_dir = str(tmp_path / "tfds")
    with pytest.raises(FileNotFoundError, match="to the Dress Code folder"):
        input_pipeline.ensure_dataset("dress_code/lower_body", data_dir)
    with pytest.raises(ValueError, match="expected viton/<config> or dress_code/<config>"):
        input_pipeline.ensure_dataset("dresscode/lower_body", data_dir)
    input_pipeline.ensure_dataset("dress_code/lower_body", data_dir, str(DUMMY))
    assert len(input_pipeline.data_source("dress_code/lower_body", "test", data_dir)) == 3
    input_pipeline.ensure_dataset("dress_code/lower_body", data_dir)  # already there: no manual_dir needed
