"""Musinsa product photos (a crawl by python -m crawler) as a TFDS builder."""
from tryon_datasets.musinsa.musinsa import Musinsa  # noqa: F401
