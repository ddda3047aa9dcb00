"""The interim model shipped until an accelerator trains configs/compact.py: what a 2-core CPU
learns in an hour. Chosen by measurement (12-minute pilots from packed VITON, paired SSIM /
MS-SSIM on the 2032 test pairs scored at 256x192): 128x96 with ngf = ndf = 8 (1.4 s per step
of 8, 0.27 epochs in 12 min) reached 0.689 / 0.609, 64x48 with the same widths (0.49 s per
step, 0.75 epochs) 0.671 / 0.566. bfloat16 is slower than float32 on this CPU (XLA runs its
convolutions through float32), so float32.

    python -m tryon_jax.acgpn.train_packed train --pack=PACK/train --test_pack=PACK/test \\
        --config=configs/compact_cpu.py --out=OUT --max_minutes=60
"""
from configs import compact


def get_config():
    config = compact.get_config()
    config.model.update(height=128, width=96, ngf=8, ndf=8)
    config.batch_size = 8
    config.train.num_epochs = 100  # --max_minutes ends it; the learning rate stays at 2e-4 for the first 50 epochs
    config.train.niter, config.train.niter_decay = 50, 50
    config.train.log_every = 100
    config.eval.batch_size = 32
    return config
