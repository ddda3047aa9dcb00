"""ACGPN for bottoms (trousers, shorts, skirts) on Dress Code's lower-body persons: the same
training as configs/viton.py with the lower garment region (tryon_jax.models.garment.LOWER:
the garment is pants and skirts, the layout may redraw the legs) at 256x192, full-body
persons. Dress Code is given by its authors on request (research licence); the builder reads
the folder they send:

    python main.py --config=configs/dresscode_lower.py --workdir=DIR \\
        --config.data.manual_dir=DRESSCODE --config.train.vgg19_weights=vgg19-dcbb9e9d.pth

``DRESSCODE`` holds ``lower_body/`` (images, label_maps, keypoints, the pair lists); the TFDS
dataset ``dress_code/lower_body`` is built into WORKDIR/tfds on first use (datasets/dresscode).
Evaluation during training scores the first ``eval.num_pairs`` test pairs of that dataset;
``python -m evaluation --config=configs/dresscode_lower.py --config.eval.tfds_data_dir=DIR/tfds``
gives the full protocol. The packed trainer takes the same config:

    python -m tryon_jax.acgpn.train_packed pack --config=configs/dresscode_lower.py --data_dir=DIR/tfds ...
"""
from configs import viton

CATEGORIES = {"lower": "lower_body", "upper": "upper_body", "dresses": "dresses"}


def get_config(garment: str = "lower"):
    config = viton.get_config()
    config.model.garment = garment
    config.data.name = f"dress_code/{CATEGORIES[garment]}"
    config.data.split = "train"
    # Evaluation: the dataset's own test pairs (TFDS), not VITON's sample folder.
    config.eval.tfds_name = config.data.name
    config.eval.data_dir = ""
    config.eval.paired_pairs = config.eval.unpaired_pairs = ""
    config.eval.num_pairs = 64
    config.tryon.data_dir = ""  # an ACGPN-layout folder of full-body persons (python -m tryon_jax.prepare_person
    # --garment lower writes one)
    return config
