"""Reading ACGPN-layout samples: tensors, value ranges and clear errors for bad inputs."""
import json

import numpy as np
import pytest
from PIL import Image

from tryon_jax.data import samples

PAIR = samples.Pair("000001_0.jpg", "001744_1.jpg")


def test_example_shapes_and_ranges(sample_copy):
    ex = samples.load_example(str(sample_copy), PAIR)
    assert ex["label"].shape == (256, 192, 1) and ex["pose"].shape == (256, 192, 18)
    assert set(np.unique(ex["label"])) <= set(range(14))
    assert -1 <= ex["image"].min() and ex["image"].max() <= 1
    assert 0 <= ex["edge"].min() and ex["edge"].max() <= 1
    keypoints = samples.read_pose(str(sample_copy / "test_pose" / "000001_0_keypoints.json"))
    drawn = [(x > 1 and y > 1) for x, y, _ in keypoints]
    assert [bool((ex["pose"][..., i] > 0).any()) for i in range(18)] == drawn


def test_pose_keypoints_2d_is_accepted(sample_copy):
    path = sample_copy / "test_pose" / "000001_0_keypoints.json"
    doc = json.loads(path.read_text())
    person = doc["people"][0]
    person["pose_keypoints_2d"] = person.pop("pose_keypoints")
    path.write_text(json.dumps(doc))
    np.testing.assert_array_equal(samples.read_pose(str(path)), np.reshape(person["pose_keypoints_2d"], (18, 3)))


@pytest.mark.parametrize("breakage, message", [
    ("missing_pose", "pose file not found"),
    ("no_people", "no person"),
    ("no_keypoints", "neither 'pose_keypoints' nor 'pose_keypoints_2d'"),
    ("wrong_count", "54 numbers, got 51"),
    ("nan", "NaN"),
    ("bad_json", "not valid JSON"),
    ("missing_image", "file not found"),
    ("wrong_size", "expected 192x256"),
    ("corrupt_image", "cannot decode image"),
    ("truncated_image", "cannot decode image"),
    ("bad_label", "outside the 14 ACGPN classes"),
])
def test_bad_inputs_name_the_file(sample_copy, breakage, message):
    pose = sample_copy / "test_pose" / "000001_0_keypoints.json"
    img = sample_copy / "test_img" / "000001_0.jpg"
    doc = json.loads(pose.read_text())
    culprit = pose
    if breakage == "missing_pose":
        pose.unlink()
    elif breakage == "no_people":
        pose.write_text(json.dumps({"people": []}))
    elif breakage == "no_keypoints":
        pose.write_text(json.dumps({"people": [{"face_keypoints": []}]}))
    elif breakage == "wrong_count":
        doc["people"][0]["pose_keypoints"] = doc["people"][0]["pose_keypoints"][:51]
        pose.write_text(json.dumps(doc))
    elif breakage == "nan":
        doc["people"][0]["pose_keypoints"][0] = float("nan")
        pose.write_text(json.dumps(doc))
    elif breakage == "bad_json":
        pose.write_text("{not json")
    elif breakage == "missing_image":
        img.unlink()
        culprit = img
    elif breakage == "wrong_size":
        Image.new("RGB", (100, 100)).save(img, format="JPEG")
        culprit = img
    elif breakage == "corrupt_image":
        img.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        culprit = img
    elif breakage == "truncated_image":
        img.write_bytes(img.read_bytes()[:600])
        culprit = img
    elif breakage == "bad_label":
        label = sample_copy / "test_label" / "000001_0.png"
        a = np.array(Image.open(label))
        a[0, 0] = 20
        Image.fromarray(a).save(label)
        culprit = label
    with pytest.raises(samples.DataError, match=message) as info:
        samples.load_example(str(sample_copy), PAIR)
    assert str(culprit) in str(info.value)


def test_pair_list_errors(tmp_path):
    bad = tmp_path / "pairs.txt"
    bad.write_text("a.jpg b.jpg\nonly_one.jpg\n")
    with pytest.raises(samples.DataError, match="pairs.txt:2"):
        samples.read_pairs(str(bad))
    with pytest.raises(samples.DataError, match="not found"):
        samples.read_pairs(str(tmp_path / "nope.txt"))
