"""Shared fixtures: the shipped sample data and the (cached) recipe weights."""
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "viton_acgpn_sample"


def build_tfds(builder_class, config: str, manual_dir, data_dir):
    """A TFDS builder's dataset built (array_record) from ``manual_dir`` into ``data_dir``."""
    import tensorflow_datasets as tfds
    builder = builder_class(config=config, data_dir=str(data_dir), file_format="array_record")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder


@pytest.fixture(scope="session")
def recipe_variables():
    from tryon_jax.weights import sources
    return sources.recipe_variables()


@pytest.fixture
def sample_copy(tmp_path):
    """A writable copy of the shipped ACGPN-layout sample folder."""
    dst = tmp_path / "data"
    shutil.copytree(SAMPLE, dst)
    return dst
