"""BlazePose port against the MediaPipe runtime's landmarks, OpenPose-18 mapping, photo loading."""
import io
import json
import os
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tryon_jax.person import pose
from tryon_jax.person.photo import PhotoError, load_photo
from tryon_jax.person.pose import BlazePose, openpose_json, to_openpose18

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "golden", "pose")
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "pose")
FRAME = np.array([192, 256])

# Pixel distances in the 192x256 frame. Measured: clean median 0.18, p90 0.91, hips 0.23;
# shrunk 0.10 / 0.53; zoomed 0.42 / 2.6. A ROI scale of 1.35 instead of 1.25 gives a clean
# median of 2.0 px, within the 3 px of the golden README, hence these tighter bounds.
BOUNDS = {"clean": (0.5, 2.0), "shrink0.6": (0.4, 1.5), "zoom1.45": (1.0, 4.0)}
HIPS_BOUND = 1.0


@pytest.fixture(scope="module")
def golden():
    path = os.path.join(GOLDEN, "blazepose_golden.npz")
    if not os.path.exists(path):
        pytest.skip(f"BlazePose golden not found at {os.path.abspath(GOLDEN)} (shared goldens absent)")
    with open(os.path.join(GOLDEN, "cases.json")) as f:
        variants = [c["variant"] for c in json.load(f)["cases"]]
    return dict(np.load(path)), np.array(variants)


@pytest.fixture(scope="module")
def model():
    return BlazePose(num_threads=2)


def _errors(model, images, reference):
    """(N, 33) pixel distances to the reference; None rows where nothing was detected."""
    out = []
    for image, ref in zip(images, reference):
        lm = model.landmarks33(image)
        out.append(None if lm is None else np.hypot(*((lm[:, :2] - ref[:, :2]) * FRAME).T))
    return out


@pytest.fixture(scope="module")
def errors(golden, model):
    data, _ = golden
    return _errors(model, data["images"], data["landmarks33"])


def test_every_case_detected(golden, errors):
    assert golden[0]["detected"].all()
    assert all(e is not None for e in errors)


@pytest.mark.parametrize("variant", sorted(BOUNDS))
def test_agrees_with_mediapipe(golden, errors, variant):
    _, variants = golden
    err = np.stack([e for e, v in zip(errors, variants) if v == variant])
    median_bound, p90_bound = BOUNDS[variant]
    assert np.median(err) <= median_bound
    assert np.percentile(err, 90) <= p90_bound
    if variant == "clean":
        assert len(err) == 32
        assert np.median(err[:, 23:25]) <= HIPS_BOUND


def test_visibility_agrees(golden, model):
    data, _ = golden
    for image, ref in zip(data["images"][:8], data["landmarks33"][:8]):
        # Measured 0.171 at worst: a fixed difference between this port's crop and MediaPipe's,
        # not rounding (XNNPACK's float32 kernels differ between CPUs by ~1e-6), so it does not
        # move between CPUs; the bound only flags a port that drifts further.
        assert np.abs(model.landmarks33(image)[:, 3] - ref[:, 3]).max() < 0.2


def test_wrong_roi_scale_fails_the_bounds(golden):
    data, variants = golden
    clean = variants == "clean"
    wrong = BlazePose(num_threads=2, roi_scale=1.35)
    err = np.stack(_errors(wrong, data["images"][clean], data["landmarks33"][clean]))
    assert np.median(err) > 2 * BOUNDS["clean"][0]


def test_large_image_agrees(golden, model):
    data, _ = golden
    big = np.asarray(Image.fromarray(data["images"][0]).resize((768, 1024), Image.BICUBIC))
    lm = model.landmarks33(big)
    err = np.hypot(*((lm[:, :2] - data["large_image_landmarks33"][:, :2]) * FRAME).T)
    assert np.median(err) <= 0.3 and err.max() <= 3.0  # measured 0.05 and 1.6


def test_close_to_viton_openpose(golden, model):
    with open(os.path.join(FIXTURES, "000001_0_keypoints.json")) as f:
        ref = np.array(json.load(f)["people"][0]["pose_keypoints"]).reshape(18, 3)
    ours = model.openpose18(golden[0]["images"][0])
    torso = np.linalg.norm(ref[1, :2] - (ref[8, :2] + ref[11, :2]) / 2)
    upper = [0, 1, 2, 3, 4, 5, 6, 7, 14, 15, 16, 17]
    assert (ours[upper, 2] > 0).all()
    both = (ours[:, 2] > 0) & (ref[:, 2] > 0)
    assert both.sum() >= 14
    assert (np.linalg.norm(ours[both, :2] - ref[both, :2], axis=1) <= 0.1 * torso).all()  # measured max 9 px / 12


def test_openpose18_mapping():
    lm = np.zeros((33, 4), np.float32)
    lm[:, :2] = 0.5
    lm[:, 3] = 0.9
    for i in range(33):  # distinct points: x encodes the MediaPipe index
        lm[i, 0] = (i + 1) / 40
    lm[11, :] = [0.6, 0.3, 0, 0.8]  # left shoulder
    lm[12, :] = [0.4, 0.5, 0, 0.7]  # right shoulder
    lm[14, 3] = 0.49  # right elbow below threshold
    lm[27, 1] = 1.01  # left ankle below the frame
    lm[28, 0] = -0.001  # right ankle left of the frame
    kp = to_openpose18(lm, 192, 256, visibility_threshold=0.5)
    assert kp.shape == (18, 3) and kp.dtype == np.float32
    np.testing.assert_allclose(kp[1], [0.5 * 192 - 0.5, 0.4 * 256 - 0.5, 0.7], rtol=1e-6)  # neck
    np.testing.assert_allclose(kp[2], [0.4 * 192 - 0.5, 0.5 * 256 - 0.5, 0.7], rtol=1e-6)  # R-shoulder <- 12
    np.testing.assert_allclose(kp[5], [0.6 * 192 - 0.5, 0.3 * 256 - 0.5, 0.8], rtol=1e-6)  # L-shoulder <- 11
    for k, src in {0: 0, 4: 16, 6: 13, 7: 15, 8: 24, 9: 26, 11: 23, 12: 25, 14: 5, 15: 2, 16: 8, 17: 7}.items():
        np.testing.assert_allclose(kp[k], [lm[src, 0] * 192 - 0.5, 0.5 * 256 - 0.5, 0.9], rtol=1e-6)
    for k in (3, 10, 13):  # below threshold, out of frame
        assert (kp[k] == 0).all()
    lm[11, 3] = 0.3
    assert (to_openpose18(lm, 192, 256)[1] == 0).all()  # neck takes the smaller visibility
    assert (to_openpose18(lm, 192, 256, visibility_threshold=0.95) == 0).all()


def test_openpose_json_format():
    kp = np.zeros((18, 3), np.float32)
    kp[0] = [10.5, 20.25, 0.75]
    doc = json.loads(json.dumps(openpose_json(kp)))
    person = doc["people"][0]
    assert doc["version"] == 1.0 and len(doc["people"]) == 1
    assert person["pose_keypoints"][:3] == [10.5, 20.25, 0.75] and len(person["pose_keypoints"]) == 54
    assert person["pose_keypoints"][3:] == [0.0] * 51
    assert person["face_keypoints"] == person["hand_left_keypoints"] == person["hand_right_keypoints"] == []


def test_blank_image_and_batch(golden, model):
    blank = np.full((256, 192, 3), 255, np.uint8)
    assert model.detections(blank) == []
    assert model.landmarks33(blank) is None and model.openpose18(blank) is None
    person = golden[0]["images"][0]
    out = model.estimate_batch([blank, person])
    assert out[0] is None and out[1].shape == (18, 3)
    np.testing.assert_array_equal(out[1], model(person))


def test_detections_one_person(golden, model):
    dets = model.detections(golden[0]["images"][0])
    assert len(dets) == 1
    d = dets[0]
    assert d.score >= 0.5 and d.box.shape == (4,) and d.keypoints.shape == (4, 2)
    assert 0 <= d.box[0] < d.box[2] <= 1 and 0 <= d.box[1] < d.box[3] <= 1


def test_rejects_bad_input(model):
    with pytest.raises(ValueError, match="uint8"):
        model.landmarks33(np.zeros((10, 10, 3), np.float32))


def test_missing_or_invalid_model(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        BlazePose(model_dir=tmp_path)
    for name in (pose.DETECTOR_FILE, pose.LANDMARK_FILE):
        (tmp_path / name).write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a valid tflite"):
        BlazePose(model_dir=tmp_path)


# --- photo loading ---------------------------------------------------------------------------

def _encode(image, fmt, **kw):
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("orientation,turns", [(6, 1), (8, -1)])
def test_exif_rotated_jpeg(golden, model, orientation, turns, tmp_path):
    person = golden[0]["images"][0]
    upright = tmp_path / "upright.jpg"
    upright.write_bytes(_encode(Image.fromarray(person), "JPEG", quality=95))
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(person, turns)))  # as a sideways camera stores it
    rotated = tmp_path / "rotated.jpg"
    rotated.write_bytes(_encode(stored, "JPEG", quality=95, exif=exif.tobytes()))
    a, b = load_photo(upright), load_photo(rotated)
    assert a.shape == b.shape == (256, 192, 3)
    assert np.abs(a.astype(int) - b).mean() < 3
    kp_a, kp_b = model.openpose18(a), model.openpose18(b)
    both = (kp_a[:, 2] > 0) & (kp_b[:, 2] > 0)
    assert both.sum() >= 14
    assert np.median(np.linalg.norm(kp_a[both, :2] - kp_b[both, :2], axis=1)) < 1.0


def test_modes_load():
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    rgba = rgb.convert("RGBA")
    rgba.putalpha(0)
    grey16 = Image.fromarray(np.full((12, 10), 65535, np.uint16))
    palette = rgb.convert("P")
    palette.info["transparency"] = 0
    cases = {
        "L": (_encode(rgb.convert("L"), "PNG"), None),
        "RGBA transparent": (_encode(rgba, "PNG"), 255),
        "P": (_encode(rgb.convert("P"), "GIF"), None),
        "P transparent": (palette, None),
        "CMYK": (_encode(rgb.convert("CMYK"), "JPEG"), None),
        "I;16": (_encode(grey16, "PNG"), 255),
        "I": (Image.fromarray(np.full((12, 10), 65535, np.int32)), 255),
        "F": (Image.fromarray(np.full((12, 10), 0.5, np.float32)), 128),
        "LA": (_encode(rgb.convert("LA"), "PNG"), None),
        "BMP": (_encode(rgb, "BMP"), None),
        "TIFF": (_encode(rgb, "TIFF"), None),
        "WEBP": (_encode(rgb, "WEBP", lossless=True), None),
    }
    for name, (source, value) in cases.items():
        out = load_photo(source, name=name)
        assert out.shape == (12, 10, 3) and out.dtype == np.uint8, name
        if value is not None:
            assert (out == value).all(), name
    np.testing.assert_array_equal(load_photo(_encode(rgb, "PNG")), np.asarray(rgb))


def _png_header(width, height):
    """A tiny PNG whose IHDR claims width x height (nothing that big is allocated)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_refusals(tmp_path):
    jpeg = _encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 48, 3), np.uint8)), "JPEG")
    with pytest.raises(PhotoError, match="missing.jpg: file not found"):
        load_photo(tmp_path / "missing.jpg")
    with pytest.raises(PhotoError, match="corrupt JPEG"):
        load_photo(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, name="corrupt.jpg")
    with pytest.raises(PhotoError, match="cut.jpg: corrupt or truncated JPEG"):
        load_photo(jpeg[: len(jpeg) // 2], name="cut.jpg")
    with pytest.raises(PhotoError, match=r"bomb.png: .*2500000000 pixels.*limit"):
        load_photo(_png_header(50000, 50000), name="bomb.png")
    with pytest.raises(PhotoError, match="big.png: image of 7000x7000 = 49000000 pixels exceeds the limit of 40000000"):
        load_photo(_png_header(7000, 7000), name="big.png")
    with pytest.raises(PhotoError, match="exceeds the limit of 100 pixels"):
        load_photo(jpeg, max_pixels=100)
    with pytest.raises(PhotoError, match="notes.txt: not a supported image .*accepted: JPEG, PNG"):
        load_photo(b"just some text\n", name="notes.txt")
    with pytest.raises(PhotoError, match="given a PDF document"):
        load_photo(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", name="doc.pdf")
    with pytest.raises(PhotoError, match="unsupported image format PPM"):
        load_photo(_encode(Image.new("RGB", (4, 4)), "PPM"), name="x.ppm")
    with pytest.raises(PhotoError, match="zero.png: corrupt PNG"):
        load_photo(_png_header(0, 10), name="zero.png")
    with pytest.raises(PhotoError, match="empty image"):
        load_photo(Image.new("RGB", (0, 5)))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(PhotoError, match="empty file"):
        load_photo(empty)
