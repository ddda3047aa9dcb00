"""The exported try-on model as the service runs it: the jax.export artefact (no model or
training code), one result image (and the region it replaced) per (person, garment).

Every call runs at one batch size, ``max_batch`` (padded; compiled once, at start), and every
example uses the same fixed noise key, so a result never depends on the other requests'
values, and it is the same at every position of the batch wherever XLA computes each row
alike (as on the x86 CPUs measured; XLA does not promise it). Between batch shapes the last
bits differ, and ACGPN's argmax stages can turn that into a visibly different picture for a
near-tie: measured with the demo model, 1 pair in 192.
"""
import hashlib
import os

import jax
import jax.numpy as jnp
import numpy as np

from tryon_jax.core import files, xla_cpu
from tryon_jax.data.loader_ops import pose_boxes
from tryon_jax.serving import exported as export_format


def _sha256(paths) -> str:
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


class ExportedTryOn:
    def __init__(self, export_dir: str, max_batch: int = 8, expect_garment: str | None = None):
        exported, self.variables, self.meta = export_format.load_exported(export_dir)
        self.garment = self.meta.get("model_spec", {}).get("garment", "upper")  # the region it dresses
        if expect_garment and self.garment != expect_garment:
            raise ValueError(f"{export_dir}: a model of the {self.garment} garment region, not {expect_garment} "
                             "(export one trained with the matching config: configs/viton.py for tops, "
                             "configs/dresscode_lower.py for bottoms)")
        self.id = _sha256([os.path.join(export_dir, export_format.EXPORT_FILE),
                           os.path.join(export_dir, export_format.params_io.PARAMS_FILE)])[:16]
        self.output_size = tuple(self.meta.get("output_size", (256, 192)))
        self.batch_size = max_batch
        self._call = xla_cpu.jit(exported.call)
        self._key = np.asarray(jax.random.key_data(jax.random.key(0)), np.uint32)

    @staticmethod
    def example(image, label, keypoints, cloth, mask) -> dict:
        """The model's raw inputs from a stored person and a garment (uint8 arrays)."""
        return {"label": np.asarray(label, np.uint8)[..., None] if np.ndim(label) == 2 else label,
                "image": np.asarray(image, np.uint8), "edge": np.asarray(mask, np.uint8),
                "color": np.asarray(cloth, np.uint8), "pose_boxes": pose_boxes(np.asarray(keypoints))}

    def __call__(self, examples: list[dict]) -> list[tuple]:
        """(image, changed) per example (at most max_batch examples): the (H, W, 3) uint8 try-on
        and the (H, W) uint8 {0, 1} region the model replaced (None from an export without it)."""
        n, size = len(examples), self.batch_size
        if not 0 < n <= size:
            raise ValueError(f"{n} examples for a model compiled for batches of {size}")
        padded = list(examples) + [examples[-1]] * (size - n)
        batch = {k: jnp.asarray(np.stack([e[k] for e in padded])) for k in export_format.IMAGE_CHANNELS}
        batch["pose_boxes"] = jnp.asarray(np.stack([e["pose_boxes"] for e in padded]).astype(np.int32))
        keys = jnp.asarray(np.tile(self._key, (size, 1)))
        out = jax.device_get(self._call(self.variables, batch, keys))
        fake, changed = np.asarray(out["fake_image"]), out.get("changed")
        return [(files.to_uint8(fake[i]), None if changed is None else np.asarray(changed[i, ..., 0], np.uint8))
                for i in range(n)]

    def warmup(self, example: dict) -> None:
        """Compiles the one batch shape the service uses."""
        self([example])
