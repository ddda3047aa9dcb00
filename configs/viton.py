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

    # python -m evaluation: fixed pairs, fixed noise.
    config.eval = ml_collections.ConfigDict()
    config.eval.data_dir = config.data_dir
    config.eval.split = "test"
    config.eval.paired_pairs = "data/viton_acgpn_sample/test_pairs_same.txt"  # person wears the cloth: SSIM
    config.eval.unpaired_pairs = "data/viton_acgpn_sample/test_pairs.txt"  # official pairs: IS, FID
    config.eval.batch_size = 8
    config.eval.seed = 0
    config.eval.is_splits = 1  # sbarratt uses 10 on 50k images; 1 suits a 2032-pair test set
    config.eval.inception_resize = True
    config.eval.inception_weights = ""  # .pth with the torchvision inception_v3 state_dict (required)
    return config
