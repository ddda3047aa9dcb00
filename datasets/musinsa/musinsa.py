"""Musinsa tops and bottoms from a crawl folder (``python -m crawler --out DIR``).

The manual folder is the crawl output: ``items.jsonl`` and ``images/<goodsNo>/``. Of each
item's stored photos, the best one of the garment alone (crawler.garment_photo: not worn by a
model, not several garments) becomes the cloth image framed as VITON frames clothes (256x192,
garment centred on white) with its binary cloth mask (ACGPN's ``edge``, crawler.cloth_mask).
Items without such a photo, or with a missing or changed one, are skipped and counted per
reason in the dataset metadata (``skipped.by_reason``: no_garment_photo, bad_photo, no_photos)::

    python -m tryon_datasets.tfds_cli build datasets/musinsa --manual_dir=CRAWL --data_dir=DATA
"""
import json
import os

import numpy as np
import tensorflow_datasets as tfds

from crawler import cloth_mask, garment_photo
from tryon_jax.core.files import png_bytes

CATEGORIES = ("top", "bottom", "other")


class Musinsa(tfds.core.GeneratorBasedBuilder):
    """Musinsa product photos as VITON-style cloth images with cloth masks."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__

    def _info(self):
        h, w = cloth_mask.HEIGHT, cloth_mask.WIDTH
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "goods_no": np.int64,
                "cloth": tfds.features.Image(shape=(h, w, 3)),
                "cloth_mask": tfds.features.Image(shape=(h, w, 1)),
                "category": tfds.features.ClassLabel(names=CATEGORIES),
                "subcategory": tfds.features.Text(),
                "name": tfds.features.Text(),
                "brand": tfds.features.Text(),
                "gender": tfds.features.Text(),
                "price": np.int64,
                "image_sha256": tfds.features.Text(),
            }),
            metadata=tfds.core.MetadataDict(),
            homepage="https://www.musinsa.com",
        )

    def _split_generators(self, dl_manager):
        root = os.fspath(dl_manager.manual_dir)
        if not os.path.isfile(os.path.join(root, "items.jsonl")):
            raise FileNotFoundError(f"{root}: no items.jsonl; pass the output folder of python -m crawler")
        self.info.metadata["skipped"] = {"count": 0, "by_reason": {}, "reasons": []}
        return {"train": self._generate_examples(root)}

    def _generate_examples(self, root):
        skipped = self.info.metadata["skipped"]
        with open(os.path.join(root, "items.jsonl"), encoding="utf-8") as f:
            items = [json.loads(line) for line in f if line.strip()]
        for item in items:
            try:
                cloth, mask, photo = garment_photo.product_cloth(root, item)
            except garment_photo.ProductPhotoError as e:
                skipped["count"] += 1
                skipped["by_reason"][e.reason] = skipped["by_reason"].get(e.reason, 0) + 1
                skipped["reasons"].append(f"{item['goodsNo']}: {e}")
                continue
            gender = item.get("gender") or item.get("listing_gender") or ""
            yield item["goodsNo"], {
                "goods_no": item["goodsNo"], "cloth": png_bytes(cloth), "cloth_mask": png_bytes(mask),
                "category": item["category"] if item["category"] in CATEGORIES else "other",
                "subcategory": item.get("subcategory") or "", "name": item.get("name") or "",
                "brand": item.get("brand") or "", "gender": ",".join(gender) if isinstance(gender, list) else gender,
                "price": int(item.get("price") or 0), "image_sha256": photo["sha256"],
            }
