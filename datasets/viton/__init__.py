"""VITON try-on data as a TFDS builder (ACGPN or CP-VTON layout)."""
from tryon_datasets.viton.viton import Viton  # noqa: F401
