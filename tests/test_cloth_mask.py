"""Cloth masks of product photos against the fixtures' ground-truth masks, and VITON framing."""
import json

import numpy as np
import pytest
from PIL import Image

from crawler.cloth_mask import HEIGHT, WIDTH, cloth_mask, frame, iou
from tests.musinsa_server import FIXTURES

PHOTOS = json.loads((FIXTURES / "images" / "index.json").read_text())


def _load(name):
    return np.asarray(Image.open(FIXTURES / "images" / name).convert("RGB"))


def test_masks_match_the_ground_truth():
    scores = {}
    for entry in PHOTOS:
        truth = np.asarray(Image.open(FIXTURES / "images" / entry["mask"])).astype(bool)
        scores[entry["kind"]] = iou(cloth_mask(_load(entry["file"])), truth)
    # measured: mean 0.992, lowest 0.962 (the shirt)
    assert np.mean(list(scores.values())) >= 0.98 and min(scores.values()) >= 0.95, scores


def test_framing_centres_the_garment_like_viton():
    rgb = _load(PHOTOS[0]["file"])
    cloth, edge = frame(rgb, cloth_mask(rgb))
    assert cloth.shape == (HEIGHT, WIDTH, 3) and edge.shape == (HEIGHT, WIDTH) and set(np.unique(edge)) == {0, 255}
    ys, xs = np.nonzero(edge)
    assert abs((ys.min() + ys.max()) / 2 - HEIGHT / 2) <= 2 and abs((xs.min() + xs.max()) / 2 - WIDTH / 2) <= 2
    assert max((ys.max() - ys.min() + 1) / HEIGHT, (xs.max() - xs.min() + 1) / WIDTH) == pytest.approx(0.9, abs=0.02)
    assert (cloth[edge == 0] == 255).all()  # white outside the garment


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="RGB uint8"):
        cloth_mask(np.zeros((10, 10), np.uint8))
    blank = np.full((60, 50, 3), 240, np.uint8)
    assert not cloth_mask(blank).any()
    with pytest.raises(ValueError, match="no garment"):
        frame(blank, cloth_mask(blank))
