"""Person photos -> ACGPN inputs: the shipped VITON photos and off-distribution versions of
them (clutter, small on a big canvas, large and EXIF-rotated, transparent, colour-shifted)
are framed, parsed and posed well enough, try-on accepts the result, and every refusal
names the photo and the problem."""
import io
import json
import re
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.conftest import SAMPLE
from tests.test_pose import _png_header
from tryon_jax import prepare_person, tryon
from tryon_jax.acgpn import train_step
from tryon_jax.data import samples
from tryon_jax.metrics import parsing
from tryon_jax.models.spec import ModelSpec
from tryon_jax.person import framing
from tryon_jax.person import prepare as prepare_lib
from tryon_jax.person import preprocessor as person_lib
from tryon_jax.person.prepare import read_framing

PERSONS = sorted(p.name for p in (SAMPLE / "test_img").iterdir())


@pytest.fixture(scope="module")
def pre():
    return person_lib.PersonPreprocessor(batch_size=8)


def _photo(name):
    return np.asarray(Image.open(SAMPLE / "test_img" / name).convert("RGB"))


def _label(name):
    return np.asarray(Image.open(SAMPLE / "test_label" / name.replace(".jpg", ".png")))


def _jpeg(array, **kw):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


def _variants(name):
    """Off-distribution photos of one VITON person (all uint8 RGB arrays or file bytes)."""
    img, lab = _photo(name), _label(name)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (8, 6, 3)).astype(np.uint8)
    busy = np.asarray(Image.fromarray(noise).resize((192, 256), Image.BICUBIC))
    clutter = np.where((lab > 0)[..., None], img, busy)
    canvas = np.full((480, 400, 3), 110, np.uint8)
    small = np.asarray(Image.fromarray(img).resize((115, 154), Image.BICUBIC))
    canvas[200:354, 40:155] = small
    large = np.asarray(Image.fromarray(img).resize((768, 1024), Image.BICUBIC))
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: the stored picture is rotated, EXIF says how to turn it back
    rotated = _jpeg(np.ascontiguousarray(np.rot90(large, 1)), exif=exif.tobytes())
    rgba = Image.fromarray(np.concatenate([img, np.where(lab > 0, 255, 0).astype(np.uint8)[..., None]], -1))
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    colour = (np.clip(img * np.array([1.1, 0.9, 0.65]) + 10, 0, 255)).astype(np.uint8)
    return {"clutter": _jpeg(clutter), "small": _jpeg(canvas), "large_exif": rotated, "rgba": buf.getvalue(),
            "colour": _jpeg(colour)}


def _resized(sx, sy, x0=0.0, y0=0.0):
    """Pixel centres of the clean photo -> those of a copy resized by (sx, sy) and put at (x0, y0)."""
    return framing.scale_matrix(sx, sy) + [[0, 0, x0], [0, 0, y0]]


# Where each variant puts the clean photo's pixels (see _variants).
EMBED = {"clutter": np.eye(2, 3), "small": _resized(115 / 192, 154 / 256, 40, 200), "large_exif": _resized(4, 4),
         "rgba": np.eye(2, 3), "colour": np.eye(2, 3)}


def test_shipped_photos_parse_like_viton(pre):
    people = pre.prepare_batch([str(SAMPLE / "test_img" / n) for n in PERSONS])
    assert all(isinstance(p, person_lib.Person) for p in people), [str(p) for p in people if isinstance(p, Exception)]
    # VITON photos are framed like VITON already: measured, all 16 are left exactly as they are
    # (no resampling). Only a person within a pixel of the ranges' edges could change side on
    # another CPU, and would then move by a few pixels.
    identity = [np.array_equal(p.framing, np.eye(2, 3)) and np.array_equal(p.image, _photo(n))
                for n, p in zip(PERSONS, people)]
    assert sum(identity) >= 14 and all(framing.max_displacement(p.framing) < 25 for p in people)
    assert all(p.photo_size == (256, 192) for p in people)
    total = 0
    for name, p in zip(PERSONS, people):
        # so the labels can be compared with VITON's after undoing the small framing change
        inv = np.linalg.inv(np.vstack([p.framing, [0, 0, 1]]))[:2]
        back = cv2.warpAffine(p.label, inv, (192, 256), flags=cv2.INTER_NEAREST, borderValue=0)
        seen = cv2.warpAffine(np.ones_like(p.label), inv, (192, 256), flags=cv2.INTER_NEAREST, borderValue=0) > 0
        total = total + np.asarray(parsing.confusion(back[seen], _label(name)[seen]))  # where the frame saw it
        assert p.keypoints[1, 2] > 0 and p.keypoints[2, 2] > 0 and p.keypoints[5, 2] > 0
    s = parsing.scores(total)
    # Measured 0.867 and 0.924 (16 photos, 0.7 M pixels, 6 of them within 1e-4 of an argmax
    # tie): rounding on another CPU moves these by ~1e-5, the bounds leave 0.06-0.09 for the model.
    assert s["miou_common"] >= 0.78 and s["foreground_iou"] >= 0.86, s


# kind -> (median keypoint distance px, foreground IoU) bounds against the clean photo's result
# moved into the variant's frame. Measured on the first 3 persons: median distances 0.7-3.8 px
# (small: 0.9-3.8), foreground IoU 0.84-0.999 (colour 0.84-0.97, clutter 0.88-0.96, small
# 0.94-0.98). Pose and labels come from decisions far from their ties, and a framing that
# changes side at a range's edge moves the picture by less than a pixel, so these move by far
# less than the margins between CPUs.
BOUNDS = {"clutter": (5, 0.80), "small": (6, 0.85), "large_exif": (5, 0.90), "rgba": (5, 0.80), "colour": (5, 0.80)}


def test_off_distribution_photos_agree_with_the_clean_one(pre):
    names = PERSONS[:3]
    clean = pre.prepare_batch([_photo(n) for n in names])
    for name, ref in zip(names, clean):
        variants = _variants(name)
        results = pre.prepare_batch(list(variants.values()), [f"{name}:{k}" for k in variants])
        for kind, p in zip(variants, results):
            assert isinstance(p, person_lib.Person), f"{kind}: {p}"
            # the clean result's keypoints where the variant's framing puts them
            to_variant = p.framing @ np.vstack([EMBED[kind], [0, 0, 1]]) @ np.vstack([framing.invert(ref.framing),
                                                                                     [0, 0, 1]])
            want = np.c_[ref.keypoints[:, :2], np.ones(18)] @ to_variant.T
            both = (p.keypoints[:, 2] > 0) & (ref.keypoints[:, 2] > 0)
            dist = np.linalg.norm(p.keypoints[both, :2] - want[both], axis=1)
            pose_bound, fg_bound = BOUNDS[kind]
            assert both.sum() >= 8 and np.median(dist) < pose_bound, (kind, np.median(dist))
            ref_fg = cv2.warpAffine((ref.label > 0).astype(np.uint8), to_variant[:2], (192, 256),
                                    flags=cv2.INTER_NEAREST) > 0
            fg = np.sum((p.label > 0) & ref_fg) / np.sum((p.label > 0) | ref_fg)
            assert fg >= fg_bound, (kind, fg)


def test_refusals_name_the_photo_and_the_problem(pre, tmp_path):
    img = _photo(PERSONS[0])
    two = np.concatenate([img, _photo(PERSONS[1])], axis=1)
    (tmp_path / "huge.png").write_bytes(_png_header(50000, 50000))
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "cut.jpg").write_bytes(_jpeg(img[:150]))
    (tmp_path / "broken.jpg").write_bytes(_jpeg(img)[:2000])
    cases = {
        "blank": (np.full((300, 200, 3), 230, np.uint8), "no person found"),
        "two": (two, "2 people found"),
        str(tmp_path / "cut.jpg"): (str(tmp_path / "cut.jpg"), "cut off above the waist .* shows 6[0-9]% of the torso"),
        "one side": (img[:, :120], "cut off .*shoulder outside the photo"),
        str(tmp_path / "huge.png"): (str(tmp_path / "huge.png"), "decompression bomb|exceeds the limit"),
        str(tmp_path / "notes.txt"): (str(tmp_path / "notes.txt"), "not a supported image"),
        str(tmp_path / "broken.jpg"): (str(tmp_path / "broken.jpg"), "corrupt or truncated"),
        str(tmp_path / "missing.jpg"): (str(tmp_path / "missing.jpg"), "not found"),
    }
    results = pre.prepare_batch([src for src, _ in cases.values()], list(cases))
    for (name, (_, pattern)), result in zip(cases.items(), results):
        assert isinstance(result, ValueError), name
        assert name in str(result)
        with pytest.raises(ValueError, match=pattern):
            raise result
    strict = person_lib.PersonPreprocessor(min_torso_px=200)
    with pytest.raises(person_lib.PersonError, match="too small .*torso of 1[0-4][0-9] pixels"):
        strict.prepare(img, "viton")


def test_photos_cut_at_the_waist_or_the_chin_are_accepted(pre):
    """What ACGPN can use: head and shoulders with the hips just below the edge, or shoulders,
    torso and arms with the face cut off (then the face keypoints are absent and the framed
    picture is white above the photo's top edge)."""
    img = _photo(PERSONS[0])  # neck at y 84, hips at 204
    waist, chin = img[:215], img[50:]
    whole, at_waist, at_chin = pre.prepare_batch([img, waist, chin], ["whole", "waist", "chin"])
    for p in (at_waist, at_chin):
        assert isinstance(p, person_lib.Person), str(p)
    assert at_waist.photo_size == (215, 192) and at_chin.photo_size == (206, 192)
    # the waist photo is zoomed in until its bottom edge is the frame's: no white band below
    assert framing.fit_matrix(192, 215) @ [0, 214.5, 1] @ [0, 1] < 255.5
    assert (at_waist.framing @ [0, 214.5, 1])[1] == pytest.approx(255.5, abs=1e-6)
    assert at_waist.image[-1].mean() < 250
    face = [0, 14, 15, 16, 17]  # nose, eyes, ears
    assert np.all(at_chin.keypoints[face] == 0) and np.all(whole.keypoints[face, 2] > 0)
    top = int(np.ceil((at_chin.framing @ [0, -0.5, 1])[1]))
    assert top > 1 and np.all(at_chin.image[:top - 1] == 255)  # the edge row blends
    for p in (at_waist, at_chin):  # the body where the whole photo has it
        shoulders = [2, 5]
        back = (framing.invert(p.framing) @ np.c_[p.keypoints[shoulders, :2], np.ones(2)].T).T
        offset = (0, 50) if p is at_chin else (0, 0)
        np.testing.assert_allclose(back + offset, whole.keypoints[shoulders, :2], atol=6)


def test_a_pose_blazepose_rejects_is_located_by_the_parser(pre, monkeypatch):
    """BlazePose's landmark model rejects 1 of the 2032 VITON test persons (arms crossed, head
    tilted): the parser's heatmap keypoints frame it instead."""
    name = PERSONS[0]
    want = pre.prepare(_photo(name), name)
    monkeypatch.setattr(pre.pose, "landmarks33", lambda image: None)
    got = pre.prepare(_photo(name), name)
    assert framing.max_displacement(got.framing) < 3 and framing.max_displacement(want.framing) < 3
    both = (got.keypoints[:, 2] > 0) & (want.keypoints[:, 2] > 0)
    dist = np.linalg.norm(got.keypoints[both, :2] - want.keypoints[both, :2], axis=1)
    assert both.sum() >= 10 and np.median(dist) < 3
    monkeypatch.setattr(pre.pose, "detections", lambda image: ["one person"])
    with pytest.raises(person_lib.PoseRejected, match="neither pose model finds the shoulders and hips"):
        pre.prepare(np.full((256, 192, 3), 255, np.uint8), "blank")


def test_cli_writes_the_acgpn_layout_that_tryon_accepts(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for n in PERSONS[:2]:
        shutil.copy(SAMPLE / "test_img" / n, photos / n)
    (photos / "clutter.jpg").write_bytes(_variants(PERSONS[2])["clutter"])
    (photos / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    code = prepare_person.main([str(p) for p in sorted(photos.iterdir())] + ["--out", str(out), "--batch-size", "2"])
    assert code == 1  # one photo refused
    refused = (out / "refused.txt").read_text().splitlines()
    assert len(refused) == 1 and "empty.png" in refused[0] and "empty file" in refused[0]
    persons = (out / "persons.txt").read_text().split()
    assert persons == ["000001_0.jpg", "000097_0.jpg", "clutter.jpg"]
    for folder in ("test_img", "test_label", "test_pose", "test_agnostic", "test_body_mask", "overlay"):
        assert len(list((out / folder).iterdir())) == 3, folder
    for n in persons:
        stem = n[:-4]
        assert samples.read_pose(str(out / "test_pose" / f"{stem}_keypoints.json")).shape == (18, 3)
        assert Image.open(out / "overlay" / f"{stem}.png").size == (768, 512)
    # try-on with a (tiny, random) model on the prepared persons and a shipped cloth
    cloth = "001744_1.jpg"
    for folder in ("test_color", "test_edge"):
        (out / folder).mkdir()
        shutil.copy(SAMPLE / folder / cloth, out / folder / cloth)
    pairs = [samples.Pair(n, cloth) for n in persons]
    spec = ModelSpec(height=64, width=48, ngf=4, ndf=4)
    written = tryon.run(train_step.init_variables(0, spec), str(out), pairs, str(tmp_path / "tryon"), batch_size=4,
                        spec=spec, progress=False)
    assert len(written) == 3 and all(np.isfinite(np.asarray(Image.open(w))).all() for w in written)


def test_viton_builder_prepares_photos(tmp_path):
    """The builder's 'photos' config frames, parses and poses people's photos with the same
    code; a photo without a person is skipped and counted with its reason."""
    import tensorflow_datasets as tfds

    from tryon_datasets.viton import Viton
    from tryon_jax.data import input_pipeline
    manual = tmp_path / "photos"
    for folder in ("test_img", "test_color", "test_edge"):
        (manual / folder).mkdir(parents=True)
    big = Image.open(SAMPLE / "test_img" / PERSONS[0]).resize((576, 768), Image.BICUBIC)
    big.save(manual / "test_img" / "alice.png")
    shutil.copy(SAMPLE / "test_img" / PERSONS[1], manual / "test_img" / "bob.jpg")
    Image.new("RGB", (300, 400), (230, 230, 230)).save(manual / "test_img" / "nobody.jpg")
    cloth = "001744_1.jpg"
    for folder in ("test_color", "test_edge"):
        shutil.copy(SAMPLE / folder / cloth, manual / folder / cloth)
    (manual / "test_pairs.txt").write_text("".join(f"{p} {cloth}\n" for p in ("alice.png", "bob.jpg", "nobody.jpg")))
    builder = Viton(config="photos", data_dir=str(tmp_path / "tfds"), file_format="array_record")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    skipped = builder.info.metadata["skipped"]["test"]
    assert skipped["count"] == 1 and "nobody.jpg: no person found" in skipped["reasons"][0]
    loader = input_pipeline.create_loader("viton/photos", "test", 2, data_dir=str(tmp_path / "tfds"), shuffle=False,
                                          num_epochs=1)
    batch = next(iter(loader))
    assert sorted(batch["person_id"].tolist()) == ["alice", "bob"]
    assert batch["image"].shape == (2, 256, 192, 3) and batch["label"].max() <= 13
    assert (batch["pose_keypoints"][:, 1, 2] > 0).all() and set(batch["cloth_id"].tolist()) == {"001744_1"}


def test_tryon_cli_takes_photos(tmp_path):
    """python -m tryon_jax.tryon --photos: people's photos prepared by the same code, each tried
    on with the cloths of the pair list (recipe weights: the images are not meant to look good)."""
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("000001_0.jpg 001744_1.jpg\n")
    # a person photographed larger than 256x192 and off-centre: on a 900x800 canvas at (300, 80)
    canvas = np.full((900, 800, 3), 200, np.uint8)
    canvas[80:80 + 512, 300:300 + 384] = np.asarray(Image.fromarray(_photo(PERSONS[2])).resize((384, 512),
                                                                                                Image.BICUBIC))
    photo = tmp_path / "me.png"
    Image.fromarray(canvas).save(photo)
    out = tmp_path / "out"
    code = tryon.main(["--recipe-weights", "--data", str(SAMPLE), "--pairs", str(pairs), "--photos", str(photo),
                       "--out", str(out), "--batch-size", "1", "--paste-back"])
    assert code == 0
    assert (out / "persons" / "test_label" / "me.png").is_file()
    assert (out / "results" / "me__001744_1.png").is_file() and (out / "strips" / "me__001744_1.png").is_file()
    record = read_framing(str(out / "persons"), "me.jpg")
    assert record["photo"] == str(photo) and record["photo_size"] == [900, 800]
    # the person, 2x VITON's size (a torso of ~240 photo pixels) on a large canvas, is brought
    # into VITON's torso range (97-146 framed pixels): a scale of about 0.4 to 0.6
    assert 0.35 < record["matrix"][0, 0] < 0.72
    pasted = np.asarray(Image.open(out / "pasted" / "me__001744_1.png"))
    assert pasted.shape == canvas.shape
    changed = np.any(pasted != canvas, axis=-1)
    # only inside the frame's footprint in the photo (recipe weights draw a random layout, so
    # the model's region is anywhere in it), and not all of it
    corners = np.c_[[[-0.5, -0.5], [191.5, 255.5]], np.ones(2)] @ framing.invert(record["matrix"]).T
    (x0, y0), (x1, y1) = corners
    ys, xs = np.nonzero(changed)
    margin = 12  # the soft edge: 2 frame pixels grown and blurred, ~2.3 photo pixels each
    assert ys.min() >= y0 - margin and ys.max() <= y1 + margin and xs.min() >= x0 - margin and xs.max() <= x1 + margin
    assert 0.02 < changed.mean() and not changed[int(y0):int(y1), int(x0):int(x1)].all()


def test_preparation_eval_scores_what_users_get(tmp_path, capsys):
    """python -m evaluation.preparation_eval on 8 sample persons, clean and 0.6x off-centre:
    every person prepared, labels and pose scored against VITON's moved by the framing
    (measured on these 8, clean: mIoU common 0.852, PCK 0.973, identity framing for 7; labels and
    pose come from decisions far from their ties, so these bounds hold on any CPU)."""
    from evaluation import preparation_eval
    from tryon_jax.data import input_pipeline
    data_dir = str(tmp_path / "tfds")
    input_pipeline.ensure_dataset("viton/acgpn", data_dir, str(SAMPLE))
    out = tmp_path / "eval"
    argv = ["--data_dir", data_dir, "--name", "viton/acgpn", "--count", "8", "--variants", "clean,small"]
    assert preparation_eval.main(argv + ["--out", str(out)]) == 0
    report = json.loads((out / "preparation_eval.json").read_text())
    clean, small = report["results"]["clean"], report["results"]["small"]
    assert clean["persons"] == small["persons"] == 8 and clean["refused"] == 0
    assert clean["miou_common"] > 0.78 and clean["pose_pck"] > 0.9 and clean["framing_identity"] >= 6
    assert small["framing_identity"] == 0 and small["framing_mean_scale_change"] > 0.3  # 0.6x: zoomed back
    assert "| **miou_common** |" in (out / "preparation_eval.md").read_text()
    capsys.readouterr()
    assert preparation_eval.main(argv[:6] + ["--fit"]) == 0  # the framing's ranges, from BlazePose
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["persons"] == 8 and 60 < fitted["torso"]["p50"] < 180
    assert preparation_eval.main(argv[:4] + ["--variants", "clean,hats"]) == 2


# Bottoms and dresses: the whole person, framed like Dress Code.
class GivenPose:
    """Stands in for BlazePose: one person with the given (33, 4) normalised landmarks."""

    def __init__(self, landmarks):
        self.landmarks = landmarks

    def detections(self, image):
        return [None]

    def landmarks33(self, image):
        return self.landmarks


def _full_body(ankle_y: float = 219.0, knee_y: float = 160.0) -> np.ndarray:
    """Dress Code's median person (192x256 frame pixels: neck y 27, ankles 219), the face above
    the picture, as normalised landmarks of a photo of any 3:4 size."""
    xy = np.full((33, 2), (96.0, -8.0))  # face points above the photo
    for (left, right), y, half in (((11, 12), 27, 21), ((13, 14), 60, 29), ((15, 16), 95, 32), ((23, 24), 98, 12),
                                   ((25, 26), knee_y, 14), ((27, 28), ankle_y, 14), ((29, 30), ankle_y + 6, 14),
                                   ((31, 32), ankle_y + 10, 16)):
        xy[left], xy[right] = (96 + half, y), (96 - half, y)
    return np.c_[(xy + 0.5) / (192, 256), np.zeros(33), np.full(33, 0.95)].astype(np.float32)


def test_bottoms_need_the_legs_and_are_framed_like_dress_code(pre, tmp_path):
    lower = pre.for_garment("lower")
    assert pre.full_body is False and lower.full_body is True
    photo = np.full((1024, 768, 3), 235, np.uint8)
    path = tmp_path / "standing.png"
    Image.fromarray(photo).save(path)
    lower.pose = GivenPose(_full_body())
    person = lower.prepare(str(path))
    np.testing.assert_allclose(person.framing, framing.fit_matrix(768, 1024))  # Dress Code's framing: kept
    assert (person.keypoints[[9, 10, 12, 13], 2] > 0).all() and (person.keypoints[[0, 14, 15], 2] == 0).all()
    # written at 512x384 for a model at that resolution; what a bottoms model regenerates greyed out
    written, refused = prepare_lib.prepare_folder(lower, [str(path)], str(tmp_path / "out"), garment="lower",
                                                     size=(512, 384))
    assert written == ["standing.jpg"] and not refused
    img = np.asarray(Image.open(tmp_path / "out" / "test_img" / "standing.jpg"))
    label = np.asarray(Image.open(tmp_path / "out" / "test_label" / "standing.png"))
    agnostic = np.asarray(Image.open(tmp_path / "out" / "test_agnostic" / "standing.png"))
    assert img.shape == (512, 384, 3) and label.shape == (512, 384)
    np.testing.assert_array_equal(label[::2, ::2], person.label)
    assert (agnostic[np.isin(label, (8, 9, 10))] == 128).all()
    keypoints = json.loads((tmp_path / "out" / "test_pose" / "standing_keypoints.json").read_text())
    got = np.asarray(keypoints["people"][0]["pose_keypoints"], np.float32).reshape(18, 3)
    np.testing.assert_allclose(got[:, :2], person.keypoints[:, :2] * 2, atol=1e-3)
    # legs cut off: refused, saying what is missing and what is needed
    for pose, where in ((_full_body(ankle_y=262.0), "above the feet (left ankle, right ankle"),
                        (_full_body(ankle_y=300.0, knee_y=258.0), "above the knees (left knee, right knee")):
        lower.pose = GivenPose(pose)
        with pytest.raises(person_lib.PersonError, match=r"standing.png: person cut off " + re.escape(where)):
            lower.prepare(str(path))
    with pytest.raises(person_lib.PersonError, match="knees and ankles in the photo"):
        lower.prepare(str(path))


def test_viton_persons_are_refused_for_bottoms(pre):
    """VITON's persons end at the hips: the real pose model puts their knees below the photo."""
    lower = pre.for_garment("lower")
    for name in PERSONS[:3]:
        with pytest.raises(person_lib.PersonError, match="person cut off above the (knees|feet)"):
            lower.prepare(str(SAMPLE / "test_img" / name))
    with pytest.raises(ValueError, match="unknown garment region 'hats'"):
        pre.for_garment("hats")
