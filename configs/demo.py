"""The embedded default: try-on of the shipped VITON sample pairs on a CPU with random recipe
weights (no downloads). It shows the whole pipeline runs; the images are not a real try-on."""
from configs import viton


def get_config():
    config = viton.get_config()
    config.data_dir = "data/viton_acgpn_sample"
    config.batch_size = 4
    config.recipe_weights = True
    return config
