"""Dress Code try-on data (Morelli et al., ECCV 2022) as a TFDS builder with VITON's features."""
from tryon_datasets.dresscode.dresscode import DressCode  # noqa: F401
