"""crawler.garment_photo: which product photos show one garment alone. Real photos: VITON's
persons (worn) and in-shop cloths (garments alone) shipped in data/; drawn ones with known
answers; the decision on its cues."""
import glob

import numpy as np
import pytest
from PIL import Image, ImageDraw

from crawler import garment_photo
from tests.conftest import REPO, SAMPLE


def _read(path):
    return np.asarray(Image.open(path).convert("RGB"))


def _tshirt(draw, x0, y0, s, colour):
    """A T-shirt silhouette, ``s`` pixels wide, top-left at (x0, y0)."""
    pts = [(0.3, 0), (0.7, 0), (1.0, 0.2), (0.85, 0.35), (0.8, 0.3), (0.8, 1.0), (0.2, 1.0), (0.2, 0.3),
           (0.15, 0.35), (0.0, 0.2)]
    draw.polygon([(x0 + s * x, y0 + s * y) for x, y in pts], fill=colour)


def test_persons_are_worn_and_cloths_are_not():
    persons = sorted(glob.glob(str(SAMPLE / "test_img" / "*.jpg")))
    cloths = sorted(glob.glob(str(SAMPLE / "test_color" / "*.jpg")))
    assert [garment_photo.classify(_read(p)) for p in persons] == ["worn"] * len(persons) == ["worn"] * 16
    kinds = [garment_photo.classify(_read(p)) for p in cloths]
    assert "worn" not in kinds and kinds.count("garment") >= 0.75 * len(cloths)


def test_drawn_photos():
    one = Image.new("RGB", (600, 800), (255, 255, 255))
    _tshirt(ImageDraw.Draw(one), 150, 200, 300, (40, 60, 150))
    two = Image.new("RGB", (800, 600), (255, 255, 255))
    for x, colour in ((60, (40, 60, 150)), (440, (40, 60, 150))):
        _tshirt(ImageDraw.Draw(two), x, 150, 300, colour)
    variants = Image.new("RGB", (800, 600), (255, 255, 255))  # two colours, overlapping
    _tshirt(ImageDraw.Draw(variants), 120, 150, 320, (200, 40, 40))
    _tshirt(ImageDraw.Draw(variants), 360, 150, 320, (30, 140, 60))
    # a studio: grey wall, the legs below trousers cut by the top edge
    y = np.linspace(200, 235, 800)[:, None, None]
    studio = Image.fromarray(np.broadcast_to(y, (800, 600, 3)).astype(np.uint8))
    d = ImageDraw.Draw(studio)
    d.polygon([(200, 0), (400, 0), (390, 600), (310, 600), (300, 200), (290, 600), (210, 600)], fill=(30, 30, 40))
    for x in (230, 330):
        d.rectangle((x, 600, x + 50, 720), fill=(224, 172, 140))
    got = [garment_photo.classify(np.asarray(im)) for im in (one, two, variants, studio)]
    assert got == ["garment", "garments", "garments", "worn"]


def test_decision_on_the_cues():
    plain = {"border_spread": 0.5, "border_mean": 254.0, "skin": 0.0, "edge": 0.0, "regions": 1, "colours": 1}
    assert garment_photo.decide(plain) == "garment"
    # a plain background is a garment photo whatever else; a busy one is worn when grey, skin or cut
    assert garment_photo.decide({**plain, "skin": 0.2}) == "garment"
    busy = {**plain, "border_spread": 20.0}
    assert garment_photo.decide(busy) == "garment"  # a white photo the garment comes close to
    for key, value in (("border_mean", 230.0), ("skin", 0.05), ("edge", 0.3)):
        assert garment_photo.decide({**busy, key: value}) == "worn"
    assert garment_photo.decide({**plain, "regions": 2}) == garment_photo.decide({**plain, "colours": 3}) == "garments"
    with pytest.raises(ValueError, match="RGB uint8"):
        garment_photo.classify(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="20x30 photo is too small"):
        garment_photo.classify(np.zeros((30, 20, 3), np.uint8))


def write_crawl(root) -> dict:
    """A crawl folder of three tops: 1 (a worn photo, then the garment alone), 2 (worn photos
    only), 3 (its photo changed since the crawl). Returns {goodsNo: item}."""
    import hashlib
    import json
    import shutil
    person = sorted(glob.glob(str(SAMPLE / "test_img" / "*.jpg")))
    garment = str(REPO / "tests" / "fixtures" / "musinsa" / "images" / "01_tshirt_500.jpg")
    items = {}
    for no, sources in ((1, [person[0], garment]), (2, person[1:3]), (3, [garment])):
        images = []
        for k, src in enumerate(sources):
            rel = f"images/{no}/{k:02d}.jpg"
            (root / "images" / str(no)).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, root / rel)
            images.append({"file": rel, "sha256": hashlib.sha256((root / rel).read_bytes()).hexdigest()})
        items[no] = {"goodsNo": no, "category": "top", "name": f"top {no}", "brand": "b", "price": 1000,
                     "images": images}
    (root / "images" / "3" / "00.jpg").write_bytes(b"changed")
    with open(root / "items.jsonl", "w") as f:
        f.writelines(json.dumps(item) + "\n" for item in items.values())
    return items


def test_each_product_offers_its_photo_of_the_garment_alone(tmp_path):
    import tensorflow_datasets as tfds

    from crawler.cloth_mask import cloth_mask, frame
    from tests.conftest import build_tfds
    from tryon_datasets.musinsa import Musinsa
    from tryon_jax.data.catalogue import Catalogue
    items = write_crawl(tmp_path / "crawl")
    catalogue = Catalogue.load(str(tmp_path / "crawl"))
    assert sorted(catalogue.garments) == ["1", "2"] and catalogue.reasons == {"no_garment_photo": 1, "bad_photo": 1}
    garment = _read(tmp_path / "crawl" / items[1]["images"][1]["file"])
    cloth, mask = frame(garment, cloth_mask(garment))
    np.testing.assert_array_equal(catalogue.get("1").cloth, cloth)  # the second photo, not the worn one
    np.testing.assert_array_equal(catalogue.get("1").mask[..., 0], mask)
    worn = catalogue.get("2").public()
    assert worn["tryon"] is False and "no photo of the garment alone (2 worn)" in worn["tryon_refusal"]
    assert catalogue.get("1").public()["tryon"] is True
    assert any("3: " in s and "sha256 differs" in s for s in catalogue.skipped)
    # the TFDS builder: only the tryable product, with the photo it used; the others counted
    builder = build_tfds(Musinsa, None, tmp_path / "crawl", tmp_path / "tfds")
    source = tfds.data_source("musinsa", split="train", data_dir=str(tmp_path / "tfds"))
    assert len(source) == 1 and source[0]["image_sha256"].decode() == items[1]["images"][1]["sha256"]
    assert builder.info.metadata["skipped"]["by_reason"] == {"no_garment_photo": 1, "bad_photo": 1}
    assert Catalogue.load(str(tmp_path / "tfds")).reasons == {"no_garment_photo": 1, "bad_photo": 1}
