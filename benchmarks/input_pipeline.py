"""Input pipeline throughput: array_record -> grain (decode) -> device batches (loader ops).
Builds the VITON dataset from the shipped sample folder into a temporary data_dir. Prints JSON.

    python benchmarks/input_pipeline.py [--batch-size 8] [--epochs 8] [--workers 0,2]
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from tryon_datasets.viton import Viton  # noqa: E402
from tryon_jax.data import input_pipeline  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "viton_acgpn_sample")


def run(data_dir, batch_size, epochs, workers, device):
    loader = input_pipeline.create_loader("viton/acgpn", "test", batch_size, data_dir=data_dir, num_epochs=epochs,
                                          worker_count=workers, drop_remainder=True)
    prepare = jax.jit(input_pipeline.device_inputs)
    n, t0, first = 0, time.perf_counter(), None
    for raw in loader:
        if device:
            jax.block_until_ready(prepare(input_pipeline.arrays(raw)))
        n += len(raw["person_id"])
        if first is None:
            first = time.perf_counter() - t0
            t0, n = time.perf_counter(), 0
    elapsed = time.perf_counter() - t0
    return {"workers": workers, "to_device": device, "examples": n, "seconds": round(elapsed, 2),
            "examples_per_s": round(n / elapsed, 1) if elapsed else None, "first_batch_s": round(first, 2)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--workers", default="0,2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        builder = Viton(config="acgpn", data_dir=data_dir, file_format="array_record")
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=SAMPLE))
        runs = [run(data_dir, args.batch_size, args.epochs, int(w), device)
                for w in args.workers.split(",") for device in (False, True)]
    print(json.dumps({"benchmark": "input_pipeline", "batch_size": args.batch_size, "device": str(jax.devices()[0]),
                      "cpu_count": os.cpu_count(), "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
