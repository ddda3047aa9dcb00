"""The exported try-on model as the service runs it: the jax.export artefact (no model or
training code), batches padded to a few fixed sizes (one compilation each, done at start),
one result image per (person, garment).

Every example uses the same fixed noise key, so a result depends only on its person and
garment, never on which requests shared its batch.
"""
import hashlib
import os

import jax
import jax.numpy as jnp
import numpy as np

from tryon_jax import exported as export_format, io
from tryon_jax.loader_ops import pose_boxes


def _sha256(paths) -> str:
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


class ExportedTryOn:
    def __init__(self, export_dir: str, max_batch: int = 8):
        exported, self.variables, self.meta = export_format.load_exported(export_dir)
        self.id = _sha256([os.path.join(export_dir, export_format.EXPORT_FILE),
                           os.path.join(export_dir, export_format.params_io.PARAMS_FILE)])[:16]
        self.output_size = tuple(self.meta.get("output_size", (256, 192)))
        self.buckets = sorted({min(2 ** i, max_batch) for i in range(max_batch.bit_length() + 1)} | {max_batch})
        self._call = jax.jit(exported.call)
        self._key = np.asarray(jax.random.key_data(jax.random.key(0)), np.uint32)

    @staticmethod
    def example(image, label, keypoints, cloth, mask) -> dict:
        """The model's raw inputs from a stored person and a garment (uint8 arrays)."""
        return {"label": np.asarray(label, np.uint8)[..., None] if np.ndim(label) == 2 else label,
                "image": np.asarray(image, np.uint8), "edge": np.asarray(mask, np.uint8),
                "color": np.asarray(cloth, np.uint8), "pose_boxes": pose_boxes(np.asarray(keypoints))}

    def _bucket(self, n: int) -> int:
        return next(b for b in self.buckets if b >= n)

    def __call__(self, examples: list[dict]) -> list[np.ndarray]:
        """(H, W, 3) uint8 try-on images, one per example (at most max_batch examples)."""
        n = len(examples)
        size = self._bucket(n)
        padded = list(examples) + [examples[-1]] * (size - n)
        batch = {k: jnp.asarray(np.stack([e[k] for e in padded])) for k in export_format.IMAGE_CHANNELS}
        batch["pose_boxes"] = jnp.asarray(np.stack([e["pose_boxes"] for e in padded]).astype(np.int32))
        keys = jnp.asarray(np.tile(self._key, (size, 1)))
        fake = np.asarray(jax.device_get(self._call(self.variables, batch, keys)["fake_image"]))
        return [io.to_uint8(fake[i]) for i in range(n)]

    def warmup(self, example: dict) -> None:
        """Compiles every batch size the service will use."""
        for size in self.buckets:
            self([example] * size)
