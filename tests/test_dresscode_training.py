"""Bottoms end to end on synthesised Dress Code persons: configs/dresscode_lower.py trains with
main.py's loop (TFDS builder, grain, the lower garment region) and learns: on 8 pairs, a hundred
and twenty steps reduce the warp loss and lift the paired SSIM of those pairs; the packed
trainer takes the same config and data."""
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.conftest import REPO
from tryon_datasets.dresscode import make_dummy_data as drawn

BOTTOMS = ("pants", "shorts", "skirt")


def write_pairs(out: str, n: int = 8, seed: int = 0) -> str:
    """``n`` drawn persons in the official lower_body layout, each paired with their own bottom
    (train, test paired and unpaired lists alike); returns the DressCode root."""
    root = os.path.join(out, "lower_body")
    for sub in ("images", "label_maps", "keypoints"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = [f"{i:06d}" for i in range(n)]
    for i, pid in enumerate(ids):
        bottom = BOTTOMS[i % len(BOTTOMS)]
        colour = tuple(int(c) for c in rng.integers(20, 200, 3))
        cx = 192 + int(rng.integers(-24, 25))
        photo, label = drawn.draw_person(bottom, colour, set(), cx)
        photo.save(os.path.join(root, "images", f"{pid}_0.jpg"), quality=95)
        label.save(os.path.join(root, "label_maps", f"{pid}_4.png"))
        shop_photo(bottom, colour).save(os.path.join(root, "images", f"{pid}_1.jpg"), quality=95)
        with open(os.path.join(root, "keypoints", f"{pid}_2.json"), "w") as f:
            json.dump({"keypoints": drawn.keypoints(cx, "", rng)}, f)
    for name in ("train_pairs.txt", "test_pairs_paired.txt", "test_pairs_unpaired.txt"):
        with open(os.path.join(root, name), "w") as f:
            f.writelines(f"{p}_0.jpg {p}_1.jpg\n" for p in ids)
    return out


def shop_photo(bottom: str, colour, scale: float = 1.3) -> Image.Image:
    """The bottom alone on white, centred and ``scale`` times as large as worn: the warp must
    shrink it and move it down onto the legs."""
    poly = np.array(drawn.bottom_polygon(bottom, 0), float)
    xy = (poly - (poly.min(0) + poly.max(0)) / 2) * scale + np.array(drawn.FRAME) / 2
    img = Image.new("RGB", drawn.FRAME, (255, 255, 255))
    ImageDraw.Draw(img).polygon([tuple(p) for p in xy.round()], fill=colour)
    return img


def warp_mask_l1(generators: dict, raw: dict, spec) -> float:
    """Mean |warped cloth mask - the person's garment mask| over the pairs, as the training
    forward's STN computes it (the ground-truth garment as the reference)."""
    import jax

    from tryon_jax.acgpn import batches, inference
    from tryon_jax.data import loader_ops
    from tryon_jax.models.networks import acgpn_module

    @jax.jit
    def l1(u, raw):
        batch = batches.resize(loader_ops.prepare(raw), spec.height, spec.width)
        x = inference.encode_inputs(batch, spec.region)
        out = acgpn_module("U", None, spec).apply(u, x["clothes"], x["mask_clothes"], x["pre_clothes_mask"],
                                                  x["clothes"], True)
        return jnp.mean(jnp.abs(out["warped_mask"] - x["mask_clothes"]))
    return float(l1(generators["U"], raw))


def small_config(manual_dir: str, steps: int):
    from configs import dresscode_lower
    config = dresscode_lower.get_config()
    config.model.update(height=64, width=48, ngf=8, ndf=4, num_d=1)
    config.batch_size = 8
    config.data.update(manual_dir=manual_dir, worker_count=0)
    # lr 1e-3 (ACGPN's is 2e-4): the warp's control points move at most about lr per Adam step
    config.train.update(num_steps=steps, lr=1e-3, niter=10**6, niter_decay=0, log_every=10, picture_every=steps,
                        checkpoint_every=steps, async_checkpoints=False, dropout=False)
    config.eval_every = steps
    config.eval.update(split="train", num_pairs=8)  # the pairs it learns from
    return config


@pytest.mark.slow
def test_bottoms_model_learns_the_synthesised_pairs(tmp_path):
    from tryon_jax.acgpn import train, train_packed, train_step
    from tryon_jax.models.spec import ModelSpec
    steps = 120
    config = small_config(write_pairs(str(tmp_path / "dresscode")), steps)
    spec = ModelSpec.from_dict(config.model)
    assert spec.garment == "lower"
    workdir = str(tmp_path / "run")
    config.eval_every = 0  # scored below, before and after, with one evaluator
    final = train.train_and_evaluate(config, workdir)
    initial = train_step.initial_state(config, spec)  # the same seed: the state at step 0
    raw = train.eval_pairs(config, train.tfds_dir(config, workdir))
    evaluate = train.make_evaluator(config, train.tfds_dir(config, workdir))
    start_ssim, final_ssim = evaluate(initial)["eval/ssim"], evaluate(final)["eval/ssim"]
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    warp = [r["warp/L1_mask"] for r in records if "warp/L1_mask" in r]
    before, after = warp_mask_l1(initial.generators(), raw, spec), warp_mask_l1(final.generators(), raw, spec)
    print(f"warp mask L1 {before:.4f} -> {after:.4f} (logged {warp[0]:.4f} -> {warp[-1]:.4f}), "
          f"paired SSIM {start_ssim:.4f} -> {final_ssim:.4f}")
    assert after < 0.85 * before and warp[-1] < warp[0]
    assert final_ssim > start_ssim + 0.15
    assert os.path.isfile(os.path.join(workdir, "samples", f"train_{steps:08d}.png"))
    # the packed trainer takes the same dataset (packed) and config file; its step is the one above
    packed_dir = str(tmp_path / "pack")
    train_packed.pack(train.tfds_dir(config, workdir), packed_dir, "train", config.data.name)
    data = train_packed.load(packed_dir)
    order = lambda images: sorted(images.reshape(len(images), -1).sum(1).tolist())  # noqa: E731
    assert order(data["image"]) == order(raw["image"])  # the 8 persons, as the grain pipeline gave them
    assert set(np.unique(data["label"])) >= {8, 9, 10} and data["edge"].shape == raw["edge"].shape
    packed_config = train_packed.load_config(str(REPO / "configs" / "dresscode_lower.py"))
    assert ModelSpec.from_dict(packed_config.model).garment == "lower"
