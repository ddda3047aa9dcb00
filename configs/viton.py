"""Faithful ACGPN at 256x192 on VITON (ACGPN layout).

Until training lands (issue 6) the main job is batched try-on of `pairs` with the weights
named below; set `acgpn_checkpoints` to the folder of the released latest_net_*.pth files.
"""
import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.job = "tryon"
    config.data_dir = "data/viton_acgpn_sample"  # a folder in ACGPN layout (test_img, test_label, ...)
    config.split = "test"
    config.pairs = ""  # default: {data_dir}/{split}_pairs.txt
    config.batch_size = 8
    config.seed = 0
    # Weights: exactly one of these.
    config.acgpn_checkpoints = ""  # folder with latest_net_{U,G1,G2,G}.pth (released ACGPN)
    config.params = ""  # params.npz from python -m tryon_jax.export
    config.recipe_weights = False  # random deterministic weights (demo only)
    return config
