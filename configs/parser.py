"""The human parser (ACGPN's 14 labels + OpenPose-18 heatmaps) trained on VITON in CP-VTON
layout (the LIP parses are mapped to ACGPN's labels by the builder). Research use only: VITON's
images may be used for non-commercial research (see data/viton_acgpn_sample/PROVENANCE.md).

    python main.py --config=configs/parser.py --workdir=runs/parser \\
        --config.data.manual_dir=PATH/VITON_CPVTON   # train/{image,image-parse,cloth,cloth-mask,pose}, pairs

(VITON in CP-VTON layout is e.g. the data/ folder of the public sahiljit/cp-vton-plus
repository.) The run writes WORKDIR/parser.npz (float16) at every checkpoint. The committed
weights tryon_jax/person/weights/parser.npz come from four runs and a calibration (see
that folder's README for the exact commands): this command (seed 0, 4000 steps, about 70
minutes on a 2-core CPU); ``:finetune`` from those weights (a new cosine cycle with milder
augmentation: the first stage underfits, train and test mIoU are equal); ``:deepen`` from
the fine-tuned weights (residual blocks added at the low-resolution levels, starting as the
identity, so the deeper network begins where the smaller one ended); ``:gpu`` from those,
through ``python -m tryon_jax.person.training.parser_packed train`` (the whole split held on one H200, one
more block at the three coarsest levels, 12000 steps of 64); then
``python -m tryon_jax.person.training.parser_calibrate`` (test-time flip and per-label offsets fitted on
training persons).
"""
import ml_collections


def get_config(variant: str = ""):
    config = ml_collections.ConfigDict()
    config.job = "parser"
    config.seed = 0
    config.batch_size = 16

    config.data = ml_collections.ConfigDict()
    config.data.name = "viton/cpvton"
    config.data.split = "train"
    config.data.manual_dir = ""
    config.data.tfds_data_dir = ""  # default: WORKDIR/tfds
    config.data.worker_count = 0
    config.data.height, config.data.width = 256, 192

    p = config.parser = ml_collections.ConfigDict()
    p.widths = (24, 40, 64, 96, 128)
    p.input_pool = 2  # the network sees 128x96; labels are upsampled to 256x192
    p.extra_blocks = ()  # residual blocks per encoder level (models/parser.py)
    p.num_epochs = 6
    p.num_steps = 4000  # > 0 overrides num_epochs; the committed weights: 4000 steps of 16 (4.5 epochs)
    p.lr = 2e-3
    p.warmup_steps = 300
    p.final_lr_fraction = 0.02
    p.weight_decay = 1e-4
    p.clip_norm = 1.0
    p.dice_weight = 0.5
    p.heatmap_weight = 1000.0
    p.heatmap_sigma = 1.5  # in heatmap pixels (1/4 resolution)
    p.p_clutter = 0.5
    p.p_geometry = 0.7
    p.weight_examples = 2000  # labels counted for the class weights
    p.weight_power = 0.5
    p.weight_clip = (0.5, 5.0)
    p.eval_split = "test"
    p.eval_examples = 256
    p.eval_every = 1000
    p.log_every = 20
    p.picture_every = 250
    p.checkpoint_every = 500
    p.keep_checkpoints = 2
    p.init_weights = ""  # a parser.npz to start from (same widths / input_pool, at most as many extra_blocks)
    if variant == "finetune":
        config.seed = 1  # another data order and other augmentations than stage 1
        p.num_steps = 3000
        p.lr = 1e-3
        p.warmup_steps = 200
        p.p_clutter = 0.4
        p.p_geometry = 0.5
    elif variant == "deepen":
        config.seed = 2
        p.extra_blocks = (0, 1, 1, 2, 1)  # identity at the start: the grown net begins as init_weights
        p.num_steps = 4000
        p.lr = 1e-3
        p.warmup_steps = 200
        p.p_clutter = 0.4
        p.p_geometry = 0.5
    elif variant == "gpu":  # for python -m tryon_jax.person.training.parser_packed train (the split held in accelerator memory)
        config.seed = 4
        config.batch_size = 64
        p.extra_blocks = (0, 1, 2, 2, 2)
        p.num_steps = 12000  # 54 epochs of VITON train; 2 min 9 s on one H200 (112 steps/s)
        p.lr = 1.5e-3
        p.warmup_steps = 500
        p.p_clutter = 0.4
        p.p_geometry = 0.5
        p.log_every = 200
    elif variant:
        raise ValueError(f"configs/parser.py: unknown variant {variant!r} (use '', 'finetune', 'deepen' or "
                         "'gpu')")
    return config
