"""ACGPN with pix2pixHD's GlobalGenerator + LocalEnhancer as the final image generator G, at
512x384 (VITON's 256x192 inputs are upsampled on device; use higher-resolution data when
you have it), three discriminator scales, parameters and Adam moments sharded over the mesh.

    python main.py --config=configs/hd.py --workdir=DIR --config.data.manual_dir=VITON_FOLDER
"""
from configs import viton


def get_config():
    config = viton.get_config()
    config.model.update(height=512, width=384, image_generator="local_enhancer", num_d=3)
    config.train.shard_params = True
    return config
