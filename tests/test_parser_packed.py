"""Parser training from packed shards (tryon_jax.person.training.parser_packed) on the shipped sample."""
import json
import os

import numpy as np
import pytest

from tryon_jax.data import input_pipeline
from tryon_jax.person import parser as parser_lib
from tryon_jax.person.training import parser_packed


@pytest.fixture(scope="module")
def sample_pack(tmp_path_factory):
    root = tmp_path_factory.mktemp("packed")
    data_dir = str(root / "tfds")
    input_pipeline.ensure_dataset("viton/acgpn", data_dir, "data/viton_acgpn_sample")
    paths = parser_packed.pack(data_dir, str(root / "pack"), "viton/acgpn", "test", shard_mb=0.1, cloth_pool=3)
    return data_dir, str(root / "pack"), paths


def test_pack_round_trips_the_split_in_bounded_shards(sample_pack):
    from tryon_jax.person.training import parser_train
    data_dir, pack_dir, paths = sample_pack
    assert len(paths) >= 2 and all(os.path.getsize(p) < 0.1e6 for p in paths)
    data = parser_packed.load(pack_dir)
    want = parser_train.load_examples("viton/acgpn", "test", data_dir, 100)
    assert len(data["image"]) == len(want["image"]) and len(data["color"]) == 3
    for key in ("image", "label", "pose_keypoints"):
        np.testing.assert_array_equal(data[key], want[key])
    np.testing.assert_array_equal(data["color"], want["color"][:3])


def test_train_on_a_pack_writes_weights_and_refuses_a_broken_pack(sample_pack, tmp_path):
    from configs.parser import get_config
    _, pack_dir, paths = sample_pack
    config = get_config("gpu")
    config.batch_size = 2
    pc = config.parser
    pc.widths, pc.extra_blocks, pc.num_steps, pc.log_every, pc.weight_examples = (8, 8, 16, 16, 16), (0, 1), 3, 1, 4
    meta = parser_packed.train_packed(config, pack_dir, str(tmp_path / "run"))
    assert meta["step"] == meta["scheduled_steps"] == 3 and meta["batch_size"] == 2
    params, loaded = parser_lib.load_weights(tmp_path / "run" / "parser.npz")
    assert loaded["extra_blocks"] == [0, 1] and "res1_0" in params
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [d["step"] for d in logged if "loss" in d] == [1, 2, 3]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pack.json").write_text(open(os.path.join(pack_dir, "pack.json")).read())
    with pytest.raises(FileNotFoundError, match="shard_000.npz: shard missing"):
        parser_packed.load(str(broken))
    assert parser_packed.main(["train", "--pack", str(tmp_path / "nowhere"), "--workdir", str(tmp_path / "w")]) == 2
