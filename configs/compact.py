"""The compact ACGPN to ship: VITON's own 256x192 with a quarter of ACGPN's widths (ngf = ndf =
16). Its four generators hold 10.6 M parameters, 21 MB in float16 (ngf 24 would be 42.8 MB, 32
is 73 MB); a training example costs 95 GFLOP (XLA's count, benchmarks/train_step.py), so one
VITON epoch (14221 pairs) is 1.36 PFLOP: at the 124 TFLOP/s an H100 reaches on a TF32 matmul
that is 5.5 epochs per minute at full use, and 10 epochs in 8 minutes need only 23% of it
(ngf 24, at 206 GFLOP, would need 49%). Trained from packed shards in one accelerator window:

    python -m tryon_jax.acgpn.train_packed train --pack=PACK/train --test_pack=PACK/test \\
        --config=configs/compact.py --out=OUT --max_minutes=8
"""
from configs import viton


def get_config():
    config = viton.get_config()
    config.model.update(ngf=16, ndf=16)
    config.data.name = "viton/cpvton"
    config.batch_size = 32
    config.train.num_epochs = 12  # the window's --max_minutes usually stops it first
    config.train.niter, config.train.niter_decay = 6, 6  # constant lr, then linear decay to 0
    config.train.log_every = 50
    config.train.picture_every = 500
    config.eval.batch_size = 64
    return config
