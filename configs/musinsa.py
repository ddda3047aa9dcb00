"""Try Musinsa tops on VITON persons: the persons of ``tryon.pairs`` (the shipped samples by
default) x the tops of the Musinsa TFDS dataset built from a crawl.

    python -m crawler --category 001 --out CRAWL --max-items 50 [...]
    python -m tryon_datasets.tfds_cli build datasets/musinsa --manual_dir=CRAWL --data_dir=DATA
    python main.py --config=configs/musinsa.py --workdir=RUN --config.tryon.musinsa_data_dir=DATA \\
        --config.tryon.acgpn_checkpoints=PATH/label2city   # or a trained --workdir
"""
from configs import viton


def get_config():
    config = viton.get_config()
    config.job = "tryon"
    config.tryon.musinsa_data_dir = ""  # TFDS data_dir holding the musinsa dataset (required)
    config.tryon.musinsa_category = "top"  # top or bottom (ACGPN changes tops)
    config.tryon.musinsa_limit = 8  # garments (0: all)
    config.tryon.musinsa_persons = 4  # persons from tryon.pairs (0: all)
    return config
