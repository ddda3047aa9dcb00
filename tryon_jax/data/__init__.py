"""Try-on data in: samples in ACGPN's folder layout, the original loader's per-pixel ops (on
device), TFDS + grain pipelines, packed shards for accelerators, the garment catalogue."""
