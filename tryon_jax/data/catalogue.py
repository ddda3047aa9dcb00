"""The garment catalogue the service offers: Musinsa tops and bottoms, from the crawler's
output folder (items.jsonl + images/, framed and masked by crawler.cloth_mask exactly as the
musinsa TFDS builder does) or from a TFDS data_dir holding the built musinsa dataset.
"""
import dataclasses
import json
import os

import numpy as np

from tryon_jax.core.files import png_bytes

CATEGORIES = ("top", "bottom")
# The garment region (tryon_jax.models.garment) a model needs to try a category on.
REGION = {"top": "upper", "bottom": "lower"}
FLAG = {"top": "--model / --export", "bottom": "--bottoms-model / --bottoms-export"}


class CatalogueError(ValueError):
    pass


class NotTryable(CatalogueError):
    """A garment of a category the model cannot try on."""


def tryon_refusal(category: str, regions=("upper",)) -> str | None:
    """Why garments of ``category`` cannot be tried on with models of ``regions`` (the garment
    regions served), or None when they can."""
    if REGION.get(category) in regions:
        return None
    return (f"{category}s cannot be tried on: no {REGION.get(category, category)}-body model is configured (the "
            f"try-on model knows {', '.join(regions) or 'nothing'}: a top's shape would be painted over the person); "
            f"name a model trained with configs/dresscode_{REGION.get(category, category)}.py ({FLAG[category]})")


@dataclasses.dataclass(frozen=True)
class Garment:
    id: str
    name: str
    brand: str
    category: str  # top | bottom
    price: int
    cloth: np.ndarray = dataclasses.field(repr=False)  # (256, 192, 3) uint8, framed like VITON
    mask: np.ndarray | None = dataclasses.field(repr=False)  # (256, 192, 1) uint8 0/255 (ACGPN's edge)
    unavailable: str | None = None  # why it cannot be tried on whatever the model (no photo of it alone)

    def refusal(self, regions=("upper",)) -> str | None:
        """Why it cannot be tried on with models of ``regions``, or None."""
        return self.unavailable or tryon_refusal(self.category, regions)

    def public(self, regions=("upper",)) -> dict:
        refusal = self.refusal(regions)
        return {"id": self.id, "name": self.name, "brand": self.brand, "category": self.category,
                "price": self.price, "tryon": refusal is None, **({"tryon_refusal": refusal} if refusal else {})}


class Catalogue:
    """The garments offered, those kept but not tryable (``Garment.unavailable``), what was
    skipped (``skipped``: messages) and how many products each reason left out of try-on
    (``reasons``: e.g. {"no_garment_photo": 3})."""

    def __init__(self, garments: list[Garment], source: str = "", skipped: list[str] | None = None,
                 reasons: dict | None = None):
        if not garments:
            raise CatalogueError(f"{source or 'catalogue'}: no tops or bottoms")
        self.garments = {g.id: g for g in garments}
        self.source = source
        self.skipped = skipped or []
        self.reasons = dict(reasons or {})
        self._png = {}

    @classmethod
    def load(cls, path: str) -> "Catalogue":
        """A crawl output folder (items.jsonl) or a TFDS data_dir with the musinsa dataset."""
        if os.path.isfile(os.path.join(path, "items.jsonl")):
            return cls.from_crawl(path)
        if os.path.isdir(os.path.join(path, "musinsa")):
            return cls.from_tfds(path)
        raise CatalogueError(f"{path}: neither a crawl output folder (items.jsonl, from python -m crawler --out) "
                             "nor a TFDS data_dir with the musinsa dataset")

    @classmethod
    def from_crawl(cls, root: str) -> "Catalogue":
        """Each product's best photo of the garment alone (crawler.garment_photo); a product with
        none is kept, not tryable; one with a missing or changed photo is skipped."""
        from crawler import garment_photo
        garments, skipped, reasons = [], [], {}
        with open(os.path.join(root, "items.jsonl"), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    skipped.append(f"items.jsonl line {n}: not JSON (a torn line?)")
                    continue
                if item.get("category") not in CATEGORIES:
                    continue
                fields = (str(item.get("goodsNo")), item.get("name") or "", item.get("brand") or "",
                          item["category"], int(item.get("price") or 0))
                try:
                    cloth, mask, _ = garment_photo.product_cloth(root, item)
                    garments.append(Garment(*fields, cloth, mask[..., None]))
                except garment_photo.ProductPhotoError as e:
                    reasons[e.reason] = reasons.get(e.reason, 0) + 1
                    if e.reason != "no_garment_photo":
                        skipped.append(f"{item.get('goodsNo')}: {e}")
                        continue
                    main = garment_photo.read_photo(root, item["images"][0])
                    garments.append(Garment(*fields, fitted(main), None, f"{e} ({e.reason})"))
                except (KeyError, IndexError, TypeError, ValueError) as e:
                    skipped.append(f"{item.get('goodsNo')}: {e}")
        return cls(garments, root, skipped, reasons)

    @classmethod
    def from_tfds(cls, data_dir: str) -> "Catalogue":
        import io

        import tensorflow_datasets as tfds
        from PIL import Image

        from tryon_datasets.musinsa.musinsa import CATEGORIES as NAMES  # the builder's ClassLabel names
        decoders = {"cloth": tfds.decode.SkipDecoding(), "cloth_mask": tfds.decode.SkipDecoding()}
        source = tfds.data_source("musinsa", split="train", data_dir=data_dir, decoders=decoders)
        garments = []
        for i in range(len(source)):
            ex = source[i]
            category = NAMES[int(ex["category"])]
            if category not in CATEGORIES:
                continue
            text = lambda k: ex[k].decode() if isinstance(ex[k], bytes) else str(ex[k])  # noqa: E731
            decode = lambda k, mode: np.asarray(Image.open(io.BytesIO(ex[k])).convert(mode))  # noqa: E731
            garments.append(Garment(str(int(ex["goods_no"])), text("name"), text("brand"), category,
                                    int(ex["price"]), decode("cloth", "RGB"), decode("cloth_mask", "L")[..., None]))
        skipped = tfds.builder("musinsa", data_dir=data_dir).info.metadata.get("skipped", {})
        return cls(garments, data_dir, reasons=skipped.get("by_reason", {}))

    def list(self, category: str | None = None) -> list[Garment]:
        if category and category not in CATEGORIES:
            raise CatalogueError(f"unknown category {category!r}; use one of {', '.join(CATEGORIES)}")
        return [g for g in self.garments.values() if not category or g.category == category]

    def get(self, garment_id: str) -> Garment:
        try:
            return self.garments[str(garment_id)]
        except KeyError:
            raise KeyError(f"no garment {garment_id!r} in the catalogue") from None

    def png(self, garment_id: str) -> bytes:
        if garment_id not in self._png:
            self._png[garment_id] = png_bytes(self.get(garment_id).cloth)
        return self._png[garment_id]


def fitted(rgb: np.ndarray) -> np.ndarray:
    """A photo fitted into the 256x192 frame on white, as it is (no mask)."""
    from PIL import Image, ImageOps
    return np.asarray(ImageOps.pad(Image.fromarray(rgb), (192, 256), color=(255, 255, 255)))


def musinsa_cloths(data_dir: str, category: str = "top", limit: int = 0, region: str = "upper") -> dict:
    """{"musinsa_<goodsNo>.png": {"color", "edge"}} of the Musinsa TFDS dataset's garments of
    ``category`` (decoded uint8, 256x192); NotTryable for a category a model of garment
    ``region`` cannot try on."""
    refusal = tryon_refusal(category, (region,))
    if refusal:
        raise NotTryable(f"--musinsa-category {category}: {refusal}")
    garments = Catalogue.from_tfds(data_dir).list(category)[:limit or None]
    if not garments:
        raise ValueError(f"{data_dir}: the musinsa dataset has no {category!r} garments")
    return {f"musinsa_{g.id}.png": {"color": g.cloth, "edge": g.mask} for g in garments}
