"""Shared fixtures: the shipped sample data and the (cached) recipe weights."""
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "viton_acgpn_sample"


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
