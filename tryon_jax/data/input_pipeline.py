"""Input pipeline: grain over ``tfds.data_source`` of the VITON builder -> decoded uint8 batches
(the dataset built on first use from a manual_dir).

Host work is decoding only (PIL, the same decoder as the original loader) and turning
keypoints into integer pose boxes; the loader's per-pixel work (PIL-exact resizes, pose
maps, normalisation) runs on device in ``loader_ops.prepare`` inside the jitted step, and
the masks and noise in the model graph. Each JAX process reads its own shard; the order is
fixed by the seed.
"""
import dataclasses
import io
import os
import sys

import grain
import jax
import numpy as np
import tensorflow_datasets as tfds
from absl import flags, logging
from PIL import Image

from tryon_datasets.viton.viton import DIFFICULTIES  # noqa: F401  (the builder's ClassLabel names)
from tryon_jax.data import loader_ops, samples

_SKIP = tfds.decode.SkipDecoding()
_DECODERS = {"image": _SKIP, "label": _SKIP, "cloth": {"image": _SKIP, "mask": _SKIP},
             "unpaired_cloth": {"image": _SKIP, "mask": _SKIP}}


def _decode(encoded: bytes, mode: str, what: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(encoded)) as img:
            a = np.asarray(img.convert(mode))
    except (OSError, SyntaxError, ValueError) as e:
        raise samples.DataError(f"{what}: cannot decode image ({e})") from e
    return a[..., None] if a.ndim == 2 else a


@dataclasses.dataclass(frozen=True)
class DecodeExample(grain.transforms.Map):
    """A TFDS example -> the raw arrays of samples.load_raw (plus ids and difficulty).

    ``pairing``: 'paired' uses the person's own cloth (ground truth exists), 'unpaired' the
    cloth of the official unpaired list."""
    pairing: str = "paired"

    def map(self, ex):
        cloth = ex["cloth" if self.pairing == "paired" else "unpaired_cloth"]
        pid = _text(ex["person_id"])
        label = ex["label"]
        label = _decode(label, "L", pid) if isinstance(label, bytes) else np.asarray(label, np.uint8)
        return {
            "label": label,
            "image": _decode(ex["image"], "RGB", pid),
            "edge": _decode(cloth["mask"], "L", _text(cloth["id"])),
            "color": _decode(cloth["image"], "RGB", _text(cloth["id"])),
            "pose_boxes": loader_ops.pose_boxes(ex["pose_keypoints"]),
            "pose_keypoints": np.asarray(ex["pose_keypoints"], np.float32),
            "person_id": np.asarray(pid),
            "cloth_id": np.asarray(_text(cloth["id"])),
            "difficulty": np.asarray(ex["difficulty"], np.int32),
        }


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def data_source(name: str, split: str, data_dir: str | None = None):
    """The array_record source with images left encoded (decoded by DecodeExample)."""
    return tfds.data_source(name, split=split, data_dir=data_dir, decoders=_DECODERS)


class GlobalBatchSlice:
    """A grain sampler: this process's slice of every global batch of one global order.

    The global order is an unsharded IndexSampler (shuffled by seed); with P processes and
    local batch L, local position i is global position (i // L) * P * L + index * L + i % L.
    Concatenating the processes' local batches therefore gives the same global batches for
    any number of processes (training is process-count invariant)."""

    def __init__(self, base: grain.samplers.IndexSampler, index: int, count: int, local_batch: int):
        self.base, self.index, self.count, self.local_batch = base, index, count, local_batch

    def __len__(self) -> int:
        n = len(self.base)
        return n if n == sys.maxsize else n // (self.count * self.local_batch) * self.local_batch

    def __getitem__(self, i: int):
        if i < 0 or i >= len(self):
            raise IndexError(f"position {i} out of range")
        batch, j = divmod(i, self.local_batch)
        meta = self.base[(batch * self.count + self.index) * self.local_batch + j]
        return grain.RecordMetadata(index=i, record_key=meta.record_key, rng=meta.rng)


def create_loader(name: str, split: str, global_batch_size: int, *, data_dir: str | None = None,
                  pairing: str = "paired", shuffle: bool = True, seed: int = 0, num_epochs: int | None = None,
                  drop_remainder: bool = True, worker_count: int = 0,
                  shard: tuple[int, int] | None = None) -> grain.DataLoader:
    """A grain DataLoader yielding this process's share of each global batch.

    Sharding is by JAX process (``jax.process_index()`` of ``jax.process_count()``, or an
    explicit ``shard=(index, count)``); the global batch must divide by the number of shards.
    The global batches depend only on ``seed``, not on the number of processes; with several
    processes an incomplete last global batch is dropped."""
    if pairing not in ("paired", "unpaired"):
        raise ValueError(f"pairing must be 'paired' or 'unpaired', got {pairing!r}")
    index, processes = shard or (jax.process_index(), jax.process_count())
    if global_batch_size % processes:
        raise ValueError(f"global batch {global_batch_size} does not divide by {processes} processes")
    local_batch = global_batch_size // processes
    source = data_source(name, split, data_dir)
    sampler = grain.samplers.IndexSampler(num_records=len(source), shuffle=shuffle, num_epochs=num_epochs, seed=seed)
    if processes > 1:
        sampler = GlobalBatchSlice(sampler, index, processes, local_batch)
    if worker_count and not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()  # grain's worker processes read absl flags (defaults are fine)
    operations = [DecodeExample(pairing), grain.transforms.Batch(local_batch, drop_remainder=drop_remainder)]
    return grain.DataLoader(data_source=source, sampler=sampler, operations=operations, worker_count=worker_count,
                            shard_options=grain.sharding.NoSharding())  # the sampler holds this process's part


def arrays(raw: dict) -> dict:
    """The numeric part of a host batch, the part that goes to the devices (ids stay on the host)."""
    return {k: raw[k] for k in samples.RAW_KEYS}


def device_inputs(raw: dict) -> dict:
    """Inside the jitted step: the loader tensors from a raw batch (loader_ops.prepare)."""
    return loader_ops.prepare(arrays(raw))


def ensure_dataset(name: str, data_dir: str, manual_dir: str = "") -> None:
    """Builds TFDS dataset ``name`` (e.g. 'viton/acgpn', 'dress_code/lower_body') into ``data_dir``
    from ``manual_dir`` when it is not there yet; without a manual_dir a missing dataset is an error."""
    builder_name, _, config = name.partition("/")
    if builder_name == "viton":
        from tryon_datasets.viton import Viton as builder_class
        folder, config = "VITON", config or "acgpn"
    elif builder_name == "dress_code":
        from tryon_datasets.dresscode import DressCode as builder_class
        folder, config = "Dress Code", config or None  # TFDS's default config, as tfds.data_source reads it
    else:
        raise ValueError(f"unknown training dataset {name!r} (expected viton/<config> or dress_code/<config>)")
    builder = builder_class(config=config, data_dir=data_dir, file_format="array_record")
    if builder.is_prepared():
        return
    if not manual_dir:
        raise FileNotFoundError(f"TFDS dataset {name} not found in {data_dir}: set config.data.manual_dir to the "
                                f"{folder} folder to build it, or build it with "
                                "python -m tryon_datasets.tfds_cli build")
    if not os.path.isdir(manual_dir):
        raise FileNotFoundError(f"config.data.manual_dir {manual_dir!r} is not a folder")
    logging.info("building TFDS %s from %s into %s", name, manual_dir, data_dir)
    import tensorflow_datasets as tfds
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
