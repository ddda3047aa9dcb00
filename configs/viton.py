"""Faithful ACGPN at 256x192 on VITON (all four generators and discriminators), as the
original trains it: Adam lr 2e-4, betas 0.5/0.999, 100 epochs + 100 of linear decay.

    python main.py --config=configs/viton.py --workdir=DIR \\
        --config.data.manual_dir=VITON_FOLDER --config.train.vgg19_weights=vgg19-dcbb9e9d.pth

``--config.job=tryon`` runs batched try-on of ``tryon.pairs`` instead, with the latest
checkpoint of DIR or the weights named in ``tryon``.
"""
import ml_collections

from tryon_jax.models.spec import ModelSpec


def get_config():
    config = ml_collections.ConfigDict()
    config.job = "train"  # or "tryon"
    config.seed = 0
    config.batch_size = 8  # global; a multiple of the device count

    config.model = ml_collections.ConfigDict(vars(ModelSpec()))  # ACGPN's shapes (tryon_jax.models.spec)

    config.data = ml_collections.ConfigDict()
    config.data.name = "viton/acgpn"  # TFDS builder/config (datasets/viton)
    config.data.split = "train"
    config.data.manual_dir = ""  # VITON in ACGPN layout; built into tfds_data_dir on first use
    config.data.tfds_data_dir = ""  # default: WORKDIR/tfds
    config.data.worker_count = 2  # grain decoding processes

    config.train = ml_collections.ConfigDict()
    config.train.num_epochs = 200
    config.train.num_steps = 0  # > 0 overrides num_epochs
    config.train.niter = 100  # epochs at the full learning rate, then niter_decay epochs of linear decay
    config.train.niter_decay = 100
    config.train.lr = 2e-4
    config.train.beta1 = 0.5
    config.train.beta2 = 0.999
    config.train.eps = 1e-8
    config.train.weight_decay = 0.0  # > 0: AdamW (decoupled)
    config.train.stages = "0:all"  # 'start_epoch:NET,...; ...' e.g. '0:G1,D1; 10:all'
    config.train.dropout = True  # U-Net drop4/drop5 and loc-net fc1 dropout, as ACGPN_train
    config.train.inpainting_holes = True  # random rectangles for the loader's arm-inpainting mask
    config.train.corrected_losses = False  # True: CE/BCE on logits (no double sigmoid)
    config.train.vgg19_weights = ""  # torchvision vgg19 .pth; empty: perceptual losses off (warned)
    config.train.dtype = "float32"  # compute dtype: float32 (as the parameters) or bfloat16 (mixed precision)
    config.train.param_dtype = "float32"  # float64 (with JAX_ENABLE_X64=1) for equivalence checks
    config.train.shard_params = False  # shard parameters and Adam moments over 'data' (large models)
    config.train.checkpoint_every = 2000
    config.train.keep_checkpoints = 5
    config.train.async_checkpoints = True
    config.train.log_every = 50
    config.train.picture_every = 1000

    config.init = ml_collections.ConfigDict()
    config.init.acgpn_checkpoints = ""  # released latest_net_*.pth folder to fine-tune from

    config.eval_every = 5000  # steps; 0: off. Paired SSIM/L1 on eval.paired_pairs during training
    config.eval = ml_collections.ConfigDict()
    config.eval.tfds_data_dir = ""  # set: the pairs of the VITON TFDS dataset (tfds_name, split) instead
    config.eval.tfds_name = "viton/cpvton"
    config.eval.data_dir = "data/viton_acgpn_sample"
    config.eval.split = "test"
    config.eval.paired_pairs = "data/viton_acgpn_sample/test_pairs_same.txt"  # person wears the cloth: SSIM
    config.eval.unpaired_pairs = "data/viton_acgpn_sample/test_pairs.txt"  # official pairs: IS, FID
    config.eval.num_pairs = 0  # during training: first N paired pairs (0: all)
    config.eval.batch_size = 8
    config.eval.seed = 0
    config.eval.is_splits = 1  # sbarratt uses 10 on 50k images; 1 suits a 2032-pair test set
    config.eval.inception_resize = True
    config.eval.inception_weights = ""  # .pth with the torchvision inception_v3 state_dict (IS, FID)

    # job=tryon: batched try-on of a pair list; weights: at most one of model / acgpn_checkpoints /
    # params / recipe_weights, else the latest checkpoint of --workdir, else the shipped model.
    config.tryon = ml_collections.ConfigDict()
    config.tryon.data_dir = "data/viton_acgpn_sample"  # ACGPN layout (test_img, test_label, ...)
    config.tryon.split = "test"
    config.tryon.pairs = ""  # default: {data_dir}/{split}_pairs.txt
    config.tryon.batch_size = 8
    config.tryon.acgpn_checkpoints = ""  # folder with latest_net_{U,G1,G2,G}.pth (released ACGPN)
    config.tryon.params = ""  # params.npz from python -m tryon_jax.export
    config.tryon.recipe_weights = False  # random deterministic weights (demo only)
    config.tryon.model = ""  # a model folder (model.json + float16 weights; acgpn.train_packed writes one)
    return config
