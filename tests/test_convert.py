"""torch state dicts -> Flax variables: naming rule, clear errors, released-checkpoint folders."""
import jax
import numpy as np
import pytest

from tests.torch_writer import save_state_dict
from tryon_jax.models import tps
from tryon_jax.weights import convert, recipe


@pytest.mark.parametrize("torch_path, flax", [
    ("conv1.0", ("conv1_0",)), ("stn.loc_net.cnn.model.0", ("stn", "loc_net", "cnn", "model_0")),
    ("model.10.conv_block.1", ("model_10", "conv_block_1")), ("scale0_layer1.0", ("scale0_layer1_0",)),
    ("model1_1.4", ("model1_1_4",)), ("fc1", ("fc1",)),
])
def test_naming_rule_roundtrip(torch_path, flax):
    assert convert.flax_path(torch_path) == flax
    assert convert.torch_module_path(flax) == torch_path


def test_layout_matches_torch_shapes():
    layout = convert.acgpn_layout("U")
    assert layout["conv1.0.weight"] == (64, 4, 3, 3)
    assert layout["stn.loc_net.cnn.fc1.weight"] == (128, 512)
    assert layout["stn.tps.target_coordinate_repr"] == (256 * 192, 28)
    assert len(convert.acgpn_layout("G1")) == 46 and len(convert.acgpn_layout("D1")) == 20


def test_errors_name_missing_unexpected_and_misshaped_keys():
    sd = recipe.recipe_state_dict("G2", convert.acgpn_layout("G2"))
    sd.pop("conv9.6.bias")
    sd["extra.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    sd["conv1.0.weight"] = np.zeros((64, 36, 3, 3), np.float32)
    with pytest.raises(ValueError) as info:
        convert.acgpn_variables({"G2": sd})
    msg = str(info.value)
    assert "missing keys (1): conv9.6.bias" in msg and "extra.weight" in msg
    assert "conv1.0.weight: expected shape (64, 37, 3, 3), got (64, 36, 3, 3)" in msg


def test_dataparallel_prefix_and_vgg_slice_names():
    sd = recipe.recipe_state_dict("VGG19", convert.acgpn_layout("VGG19"))
    sliced = {f"module.slice1.{k.split('.', 1)[1]}" if k.startswith("features.0.") else f"module.{k}": v
              for k, v in sd.items()}
    sliced["module.classifier.0.weight"] = np.zeros((2, 2), np.float32)
    a = convert.acgpn_variables({"VGG19": sd})["VGG19"]
    b = convert.acgpn_variables({"VGG19": sliced})["VGG19"]
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def test_tps_buffer_of_another_size_is_refused():
    sds = recipe.acgpn_state_dicts(("U",))
    sds["U"]["stn.tps.target_coordinate_repr"] = tps.tps_buffers(128, 96)[1]
    with pytest.raises(ValueError, match="target_coordinate_repr"):
        convert.acgpn_variables(sds)


def test_load_released_checkpoint_folder(tmp_path):
    """latest_net_{U,G1,G2,G}.pth written in torch's zip format load through the safe reader."""
    sds = recipe.acgpn_state_dicts()
    for name, sd in sds.items():
        save_state_dict(tmp_path / f"latest_net_{name}.pth", sd, prefix=f"latest_net_{name}")
    loaded = convert.load_acgpn_checkpoints(tmp_path)
    expected = convert.acgpn_variables(sds)
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(expected)
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, expected)
    (tmp_path / "latest_net_G.pth").unlink()
    with pytest.raises(FileNotFoundError, match="latest_net_G.pth"):
        convert.load_acgpn_checkpoints(tmp_path)
