"""What a person sees of a training run: metrics as JSONL and TensorBoard, pictures as PNG,
messages on stderr.

Only JAX process 0 writes. On resume, JSONL lines after the restored step are dropped (they
belong to steps that will be run again), so the file always describes one run.
"""
import json
import os
import sys

import jax
import numpy as np
from absl import logging
from tqdm import tqdm

from tryon_jax.core import files


class MetricsLog:
    def __init__(self, workdir: str, resume_step: int = 0):
        self.enabled = jax.process_index() == 0
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.samples = os.path.join(workdir, "samples")
        self._tb = None
        if not self.enabled:
            return
        if os.path.isfile(self.path):
            with open(self.path) as f:
                kept = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= resume_step]
            with files.atomic_write(self.path, "w") as f:
                f.writelines(kept)
        from tensorboardX import SummaryWriter
        self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
        self._file = open(self.path, "a")

    def scalars(self, step: int, values: dict) -> None:
        if not self.enabled:
            return
        values = {k: float(v) for k, v in values.items()}
        self._file.write(json.dumps({"step": step, **values}) + "\n")
        self._file.flush()
        for k, v in values.items():
            self._tb.add_scalar(k, v, step)

    def picture(self, step: int, name: str, image_uint8: np.ndarray) -> str | None:
        """Saves samples/<name>_<step>.png and logs it to TensorBoard; returns the path."""
        if not self.enabled:
            return None
        path = os.path.join(self.samples, f"{name}_{step:08d}.png")
        files.save_png(path, image_uint8)
        self._tb.add_image(name, image_uint8, step, dataformats="HWC")
        return path

    def close(self) -> None:
        if self.enabled:
            self._file.close()
            self._tb.close()


def say(message: str) -> None:
    """A line for the person running the job (process 0, around the progress bar) and the log."""
    logging.info(message)
    if jax.process_index() == 0:
        tqdm.write(message, file=sys.stderr)
