"""VITON (Han et al., CVPR 2018) for virtual try-on, in ACGPN's 14-label form.

The data cannot be downloaded: put a copy in the manual folder, in one of two layouts
(choose the builder config of the same name):

* ``acgpn``: ``{train,test}_img/ID_0.jpg``, ``{train,test}_label/ID_0.png`` (ACGPN ids 0..13),
  ``{train,test}_edge/ID_1.jpg``, ``{train,test}_color/ID_1.jpg``,
  ``{train,test}_pose/ID_0_keypoints.json``, and ``test_pairs.txt`` / ``train_pairs.txt``;
* ``cpvton``: ``{train,test}/{image,image-parse,cloth,cloth-mask,pose}/`` (LIP parses, mapped to
  ACGPN's labels with the fixed lookup verified on all 14221 training images), and the pair lists.

Build (array_record, no TensorFlow needed)::

    tfds build datasets/viton --config=acgpn --manual_dir=PATH --data_dir=DATA
    # or --config=acgpn_lenient: bad samples are skipped and counted in the metadata

Load: ``tfds.data_source("viton/acgpn", data_dir=DATA)`` (tryon_jax.data.input_pipeline reads it
with grain). Each example is one person with the paired cloth (their own) and the cloth of
the official unpaired list (test_pairs.txt; for train the list is paired), the pose keypoints
and, for the 2032 official test persons, ACGPN's difficulty (easy / medium / hard).
Images are stored as their original encoded bytes (JPEG or PNG); label maps as PNG.
"""
import dataclasses
import functools
import io
import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from tryon_jax.data import samples

HEIGHT, WIDTH = samples.HEIGHT, samples.WIDTH
DIFFICULTIES = ("easy", "medium", "hard", "unknown")
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
# LIP parse id -> ACGPN label id (../shared/data/viton/README.md, quirk 1).
LIP_TO_ACGPN = np.array([0, 0, 1, 0, 0, 4, 7, 0, 3, 8, 2, 0, 0, 12, 11, 13, 10, 9, 6, 5], np.uint8)
_LISTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "difficulty")
_FOLDERS = {
    "acgpn": {"image": "{split}_img", "label": "{split}_label", "cloth": "{split}_color", "mask": "{split}_edge",
              "pose": "{split}_pose"},
    "cpvton": {"image": "{split}/image", "label": "{split}/image-parse", "cloth": "{split}/cloth",
               "mask": "{split}/cloth-mask", "pose": "{split}/pose"},
}


@dataclasses.dataclass
class VitonConfig(tfds.core.BuilderConfig):
    layout: str = "acgpn"
    skip_bad: bool = False  # skip bad samples (counted in the metadata) instead of failing
    prepare: bool = False  # person photos only: frame, parse and pose them (tryon_jax.person)


def features(height: int = HEIGHT, width: int = WIDTH) -> tfds.features.FeaturesDict:
    """One example: a person with labels and pose, the paired and the unpaired cloth (images at
    height x width); the Dress Code builder stores the same."""
    def image(channels):
        return tfds.features.Image(shape=(height, width, channels))
    cloth = {"id": tfds.features.Text(), "image": image(3), "mask": image(1)}
    return tfds.features.FeaturesDict({
        "person_id": tfds.features.Text(),
        "image": image(3),
        "label": image(1),
        # Raw bytes: the default encoding would round float64 to float32.
        "pose_keypoints": tfds.features.Tensor(shape=(samples.NUM_KEYPOINTS, 3), dtype=np.float64,
                                               encoding=tfds.features.Encoding.BYTES),
        "cloth": dict(cloth),
        "unpaired_cloth": dict(cloth),
        "difficulty": tfds.features.ClassLabel(names=DIFFICULTIES),
    })


class Viton(tfds.core.GeneratorBasedBuilder):
    """VITON person / cloth / parse / pose, ACGPN labels, official pairs and difficulty."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__
    BUILDER_CONFIGS = [
        VitonConfig(name="acgpn", layout="acgpn", description="ACGPN layout (train_img, train_label, ...)."),
        VitonConfig(name="cpvton", layout="cpvton", description="CP-VTON layout (image, image-parse, ...)."),
        VitonConfig(name="acgpn_lenient", layout="acgpn", skip_bad=True,
                    description="ACGPN layout; bad samples skipped and counted."),
        VitonConfig(name="cpvton_lenient", layout="cpvton", skip_bad=True,
                    description="CP-VTON layout; bad samples skipped and counted."),
        VitonConfig(name="photos", layout="acgpn", skip_bad=True, prepare=True,
                    description="People's own photos; labels and pose by tryon_jax.person."),
    ]

    def _info(self):
        return self.dataset_info_from_configs(
            features=features(),
            metadata=tfds.core.MetadataDict(),
            homepage="https://github.com/xthan/VITON",
            citation="Han et al., VITON: An Image-based Virtual Try-on Network, CVPR 2018. "
                     "Yang et al., Towards Photo-Realistic Virtual Try-On by Adaptively "
                     "Generating-Preserving Image Content, CVPR 2020.",
        )

    def _split_generators(self, dl_manager):
        root = os.fspath(dl_manager.manual_dir)
        folders = _FOLDERS[self.builder_config.layout]
        splits = {}
        for split in ("train", "test"):
            if os.path.isdir(os.path.join(root, folders["image"].format(split=split))):
                splits[split] = self._generate_examples(root, split)
        if not splits:
            raise FileNotFoundError(f"{root}: no {folders['image'].format(split='train|test')} folder; "
                                    f"is this the {self.builder_config.layout} layout?")
        self.info.metadata["skipped"] = {}
        return splits

    def _generate_examples(self, root, split):
        cfg = self.builder_config
        folders = {k: os.path.join(root, v.format(split=split)) for k, v in _FOLDERS[cfg.layout].items()}
        exts = PHOTO_EXTENSIONS if cfg.prepare else (".jpg", ".jpeg", ".png")
        persons = sorted(f for f in os.listdir(folders["image"]) if f.lower().endswith(exts))
        paired = _read_pair_map(root, split, same=True)
        unpaired = _read_pair_map(root, split, same=split == "train")
        difficulty = official_difficulty()
        skipped = self.info.metadata["skipped"].setdefault(split, {"count": 0, "reasons": []})
        if cfg.prepare:
            from tryon_jax.person.preprocessor import PersonPreprocessor
            preprocessor = PersonPreprocessor()
        for person in persons:
            stem = os.path.splitext(person)[0]
            own = paired.get(person, stem[:-2] + "_1.jpg" if stem.endswith("_0") else person)
            try:
                if cfg.prepare:
                    if person not in unpaired:
                        raise samples.DataError(f"{person}: not in {split}_pairs.txt (which names its cloth)")
                    own = unpaired[person]
                    prepared = preprocessor.prepare(os.path.join(folders["image"], person))
                    person_parts = {"image": _jpeg(prepared.image), "label": _png(prepared.label),
                                    "pose_keypoints": prepared.keypoints.astype(np.float64)}
                else:
                    person_parts = {
                        "image": _image_bytes(os.path.join(folders["image"], person), "RGB"),
                        "label": self._label_bytes(folders["label"], stem),
                        "pose_keypoints": samples.read_pose(os.path.join(folders["pose"], f"{stem}_keypoints.json"))}
                example = {
                    "person_id": stem,
                    **person_parts,
                    "cloth": _cloth(folders, own),
                    "unpaired_cloth": _cloth(folders, unpaired.get(person, own)),
                    "difficulty": difficulty.get(person, "unknown"),
                }
            except (samples.DataError, ValueError) as e:
                if not cfg.skip_bad:
                    raise
                skipped["count"] += 1
                skipped["reasons"].append(str(e))
                continue
            yield stem, example

    def _label_bytes(self, folder, stem):
        path = os.path.join(folder, stem + ".png")
        if self.builder_config.layout == "cpvton":
            lip = np.asarray(samples.open_image(path, None))  # palette indices (mode P); never .convert('L')
            if lip.ndim != 2 or lip.max(initial=0) >= len(LIP_TO_ACGPN):
                raise samples.DataError(f"{path}: not a LIP parse (values {np.unique(lip).tolist()[:8]})")
            label = LIP_TO_ACGPN[lip]
        else:
            label = samples.check_label(np.asarray(samples.open_image(path, "L")), path)
        return _png(label)


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _image_bytes(path: str, mode: str) -> bytes:
    """The file's own bytes when it already decodes to ``mode`` at the right size (no
    re-encoding loss); otherwise a lossless PNG of its ``mode`` conversion (e.g. RGB edge files)."""
    img = samples.open_image(path, mode)
    with open(path, "rb") as f:
        raw = f.read()
    with Image.open(io.BytesIO(raw)) as original:
        if original.mode == mode and original.format in ("JPEG", "PNG"):
            return raw
    return _png(np.asarray(img))


def _cloth(folders, name):
    stem = os.path.splitext(name)[0]
    return {"id": stem, "image": _image_bytes(_with_any_ext(folders["cloth"], name), "RGB"),
            "mask": _image_bytes(_with_any_ext(folders["mask"], name), "L")}


def _with_any_ext(folder, name):
    """folder/name, or the same stem with another image extension when only that exists."""
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        stem = os.path.splitext(name)[0]
        for ext in (".jpg", ".png", ".jpeg"):
            if os.path.isfile(os.path.join(folder, stem + ext)):
                return os.path.join(folder, stem + ext)
    return path


def _read_pair_map(root, split, same):
    """person -> cloth from {split}_pairs.txt (same=False) or {split}_pairs_same.txt."""
    name = f"{split}_pairs_same.txt" if same and split == "test" else f"{split}_pairs.txt"
    path = os.path.join(root, name)
    if not os.path.isfile(path):
        return {}
    return {p.person: p.cloth for p in samples.read_pairs(path)}


@functools.lru_cache(maxsize=1)
def official_difficulty() -> dict[str, str]:
    """ACGPN's official lists: person file name (ID_0.jpg) -> 'easy' | 'medium' | 'hard',
    in list order, easy first."""
    out = {}
    for level in DIFFICULTIES[:3]:
        with open(os.path.join(_LISTS, f"{level}.txt")) as f:
            out.update({line.strip(): level for line in f if line.strip()})
    return out
