"""The VITON TFDS builder on its dummy data (both layouts), read back with tfds.data_source and
grain; bad samples fail loudly or are skipped and counted."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.conftest import REPO, build_tfds
from tryon_jax.data import input_pipeline, samples

DUMMY = REPO / "datasets" / "viton" / "dummy_data"


def _build(config, manual_dir, data_dir):
    from tryon_datasets.viton import Viton
    return build_tfds(Viton, config, manual_dir, data_dir)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    for layout in ("acgpn", "cpvton"):
        _build(layout, DUMMY / layout, data_dir)
    return data_dir


def _by_person(data_dir, config, split):
    source = input_pipeline.data_source(f"viton/{config}", split, str(data_dir))
    return {ex["person_id"].decode(): ex for ex in (source[i] for i in range(len(source)))}


def test_both_layouts_give_the_same_examples(built):
    for split, n in (("test", 3), ("train", 2)):
        a, c = _by_person(built, "acgpn", split), _by_person(built, "cpvton", split)
        assert len(a) == len(c) == n and set(a) == set(c)
        for pid in a:
            # LIP parse -> ACGPN lookup reproduces ACGPN's labels; same files otherwise.
            la = input_pipeline._decode(a[pid]["label"], "L", pid)
            lc = input_pipeline._decode(c[pid]["label"], "L", pid)
            np.testing.assert_array_equal(la, lc)
            assert a[pid]["image"] == c[pid]["image"] and a[pid]["cloth"]["id"] == c[pid]["cloth"]["id"]
            np.testing.assert_array_equal(a[pid]["pose_keypoints"], c[pid]["pose_keypoints"])


def test_pairs_difficulty_and_keypoints(built):
    test = _by_person(built, "acgpn", "test")
    unpaired = {p.person[:-4]: p.cloth[:-4] for p in samples.read_pairs(str(DUMMY / "acgpn" / "test_pairs.txt"))}
    difficulty = {}
    for level in ("easy", "medium", "hard"):
        names = (REPO / "datasets" / "viton" / "difficulty" / f"{level}.txt").read_text().split()
        difficulty.update({n[:-4]: level for n in names})
    for pid, ex in test.items():
        assert ex["cloth"]["id"].decode() == pid[:-2] + "_1"
        assert ex["unpaired_cloth"]["id"].decode() == unpaired[pid]
        assert input_pipeline.DIFFICULTIES[ex["difficulty"]] == difficulty[pid]
        want = samples.read_pose(str(DUMMY / "acgpn" / "test_pose" / f"{pid}_keypoints.json"))
        np.testing.assert_array_equal(ex["pose_keypoints"], want)  # float64 kept exactly
    train = _by_person(built, "acgpn", "train")
    assert all(input_pipeline.DIFFICULTIES[ex["difficulty"]] == "unknown" for ex in train.values())


def test_grain_loader_is_deterministic_and_sharded(built):
    def ids(global_batch=1, num_epochs=1, **kw):
        loader = input_pipeline.create_loader("viton/acgpn", "test", global_batch, data_dir=str(built),
                                              num_epochs=num_epochs, **kw)
        return [str(pid) for b in loader for pid in b["person_id"]]
    assert ids(seed=3) == ids(seed=3)
    assert sorted(ids(seed=3)) == ["000001_0", "000097_0", "001476_0"]
    shards = [ids(3, seed=3, shard=(i, 3)) for i in range(3)]
    assert all(len(s) == 1 for s in shards)
    # Each process holds its slice of the same global batches as a single process.
    assert sum(shards, []) == ids(3, seed=3)
    halves = [ids(2, seed=5, num_epochs=2, shard=(i, 2)) for i in range(2)]
    assert [halves[i][k] for k in range(2) for i in range(2)] == ids(2, seed=5, num_epochs=2)[:4]


def test_batches_feed_the_device_loader(built):
    loader = input_pipeline.create_loader("viton/acgpn", "test", 3, data_dir=str(built), num_epochs=1, shuffle=False)
    raw = next(iter(loader))
    batch = input_pipeline.device_inputs(raw)
    for i, pid in enumerate(raw["person_id"]):
        pair = samples.Pair(f"{pid}.jpg", f"{raw['cloth_id'][i]}.jpg")
        want = samples.load_example(str(DUMMY / "acgpn"), pair)
        for key in want:
            np.testing.assert_array_equal(np.asarray(batch[key][i]), want[key], err_msg=f"{pid}/{key}")


@pytest.mark.parametrize("breakage, message", [
    ("missing_pose", "pose file not found"),
    ("corrupt_cloth", "cannot decode image"),
    ("bad_label", "outside the 14 ACGPN classes"),
    ("wrong_size", "expected 192x256"),
])
def test_bad_samples_fail_or_are_skipped(tmp_path, breakage, message):
    manual = tmp_path / "manual"
    shutil.copytree(DUMMY / "acgpn", manual)
    culprit = {"missing_pose": manual / "test_pose" / "000097_0_keypoints.json",
               "corrupt_cloth": manual / "test_color" / "019522_1.jpg",
               "bad_label": manual / "test_label" / "000097_0.png",
               "wrong_size": manual / "test_img" / "000097_0.jpg"}[breakage]
    if breakage == "missing_pose":
        culprit.unlink()
    elif breakage == "corrupt_cloth":
        culprit.write_bytes(culprit.read_bytes()[:300])
    elif breakage == "bad_label":
        from PIL import Image
        a = np.array(Image.open(culprit))
        a[5, 5] = 17
        Image.fromarray(a).save(culprit)
    else:
        from PIL import Image
        Image.new("RGB", (100, 120)).save(culprit, format="JPEG")
    with pytest.raises(samples.DataError, match=message) as info:
        _build("acgpn", manual, tmp_path / "strict")
    assert str(culprit) in str(info.value)
    assert not list((tmp_path / "strict").glob("viton/acgpn/1.0.0/*.array_record*"))  # nothing half-written
    builder = _build("acgpn_lenient", manual, tmp_path / "lenient")
    assert builder.info.splits["test"].num_examples == 2
    meta = json.loads((Path(builder.data_dir) / "metadata.json").read_text())
    assert meta["skipped"]["test"]["count"] == 1 and str(culprit) in meta["skipped"]["test"]["reasons"][0]


def test_tfds_build_command(tmp_path):
    cmd = [sys.executable, "-m", "tryon_datasets.tfds_cli", "build", str(REPO / "datasets" / "viton"),
           "--config=cpvton", f"--manual_dir={DUMMY / 'cpvton'}", f"--data_dir={tmp_path}",
           "--file_format=array_record"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(tfds.data_source("viton/cpvton", split="test", data_dir=str(tmp_path))) == 3
