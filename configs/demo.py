"""The embedded default: the whole training loop on the 16 shipped VITON test samples on a
CPU in minutes (same code as configs/viton.py; 64x48, widths / 8), then try-on with it.

    python main.py --config=configs/demo.py --workdir=runs/demo
    python main.py --config=configs/demo.py --config.job=tryon --workdir=runs/demo

16 examples cannot teach a try-on: the pictures show the loop works (losses fall, the
warp moves), not a usable model.
"""
from configs import viton


def get_config():
    config = viton.get_config()
    config.batch_size = 4
    config.model.update(height=64, width=48, ngf=8, ndf=8)
    config.data.manual_dir = "data/viton_acgpn_sample"
    config.data.split = "test"  # the shipped samples are VITON test persons
    config.data.worker_count = 0
    config.train.num_steps = 120
    config.train.niter, config.train.niter_decay = 15, 15  # epochs of 4 steps
    config.train.checkpoint_every = 40
    config.train.keep_checkpoints = 2
    config.train.log_every = 10
    config.train.picture_every = 40
    config.eval_every = 40
    config.tryon.batch_size = 4
    return config
