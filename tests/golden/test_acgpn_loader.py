"""The loader reproduces the original data loader's tensors from the encoded source files."""
import pytest

from tests.golden import golden
from tryon_jax.data import samples

FOLDER = golden.golden_dir("TRYON_ACGPN_GOLDEN", "acgpn")


def test_loader_matches_golden_tensors():
    golden.require(FOLDER, "inference_inputs.npz", "sources")
    inputs = golden.load_npz(FOLDER / "inference_inputs.npz")
    cmp = golden.Comparisons()
    for case_dir in sorted((FOLDER / "sources").iterdir()):
        case = case_dir.name
        person = next((case_dir / "test_img").iterdir()).stem
        cloth = next((case_dir / "test_color").iterdir()).stem
        ex = samples.load_example(str(case_dir), samples.Pair(person + ".jpg", cloth + ".jpg"))
        for key, value in ex.items():
            if f"{case}/{key}" in inputs:
                cmp.close(f"{case}/{key}", value[None], golden.nhwc(inputs[f"{case}/{key}"]), 0)
    if not cmp.rows:
        pytest.skip("no source cases")
    cmp.check(5)


def test_device_loader_from_decoded_arrays():
    """loader_ops.prepare on the golden raw_* arrays gives the loader tensors bit for bit."""
    import jax

    from tryon_jax.data import loader_ops
    golden.require(FOLDER, "inference_inputs.npz")
    inputs = golden.load_npz(FOLDER / "inference_inputs.npz")
    cases = sorted({k.split("/")[0] for k in inputs if k.endswith("/raw_image")})
    cmp = golden.Comparisons()
    for case in cases:
        raw = {"label": inputs[f"{case}/raw_label"][None, ..., None], "image": inputs[f"{case}/raw_image"][None],
               "edge": inputs[f"{case}/raw_edge"][None, ..., None], "color": inputs[f"{case}/raw_color"][None],
               "pose_boxes": loader_ops.pose_boxes(inputs[f"{case}/raw_pose_keypoints"])[None]}
        out = jax.jit(loader_ops.prepare)(raw)
        for key, value in out.items():
            cmp.close(f"{case}/{key}", value, golden.nhwc(inputs[f"{case}/{key}"]), 0)
    cmp.check(5)


def test_tfds_grain_device_pipeline_matches_golden(tmp_path):
    """Golden source files -> VITON builder (array_record) -> grain -> device loader ops equal
    the original loader's tensors. The sources are PNG, so no JPEG decoder is involved; for JPEG
    files the decoder is Pillow's, the one the original loader and the goldens used."""
    import shutil

    import tensorflow_datasets as tfds

    from tryon_datasets.viton import Viton
    from tryon_jax.data import input_pipeline
    golden.require(FOLDER, "inference_inputs.npz", "sources")
    inputs = golden.load_npz(FOLDER / "inference_inputs.npz")
    cmp = golden.Comparisons()
    for case_dir in sorted((FOLDER / "sources").iterdir()):
        case = case_dir.name
        manual = tmp_path / case / "manual"
        shutil.copytree(case_dir, manual)
        person = next((manual / "test_img").iterdir()).name
        cloth = next((manual / "test_color").iterdir()).name
        for name in ("test_pairs.txt", "test_pairs_same.txt"):
            (manual / name).write_text(f"{person} {cloth}\n")
        builder = Viton(config="acgpn", data_dir=str(tmp_path / case / "tfds"), file_format="array_record")
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
        loader = input_pipeline.create_loader("viton/acgpn", "test", 1, data_dir=str(tmp_path / case / "tfds"),
                                              num_epochs=1, shuffle=False)
        batch = input_pipeline.device_inputs(next(iter(loader)))
        for key, value in batch.items():
            cmp.close(f"{case}/{key}", value, golden.nhwc(inputs[f"{case}/{key}"]), 0)
    cmp.check(5)
