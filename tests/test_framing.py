"""The framing map alone (no models): identity for a VITON-framed person, VITON's ranges for
the others, the photo's bottom edge never inside the frame, and frame() copying the identity;
Dress Code's full-body framing for bottoms and dresses, at 256x192 and 512x384."""
import cv2
import numpy as np
import pytest

from tryon_jax.person import framing

H, W = framing.HEIGHT, framing.WIDTH


def _apply(matrix, xy):
    return np.asarray(matrix) @ np.append(xy, 1.0)


@pytest.mark.parametrize("neck, hip", [((95.0, 84.0), (96.0, 203.0)),
                                       ((66.0, 64.0), (66.0, 154.0))])  # unusual, still as VITON has them
def test_a_person_framed_like_viton_is_left_alone(neck, hip):
    m = framing.framing_matrix(np.array(neck), np.array(hip), W, H)
    assert np.array_equal(m, np.eye(2, 3))
    photo = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    framed = framing.frame(photo, m)
    assert np.array_equal(framed, photo) and framed is not photo


X0, Y0, T1 = framing.NECK_X_RANGE[0], framing.NECK_Y_RANGE[0], framing.TORSO_RANGE[1]


@pytest.mark.parametrize("neck, hip, want_neck, want_torso", [
    ((50.0, 84.0), (50.0, 204.0), (X0, 84.0), 120.0),  # too far left: moved to the range's edge
    ((95.0, 50.0), (95.0, 130.0), (95.0, Y0), framing.TORSO_RANGE[0]),  # too high and too small
    # too large: shrunk about the neck, then moved down so that the bottom edge does not show
    ((95.0, 84.0), (95.0, 254.0), (95.0, H - 0.5 - T1 / 170 * (H - 0.5 - 84)), T1),
])
def test_out_of_range_persons_move_to_the_nearest_viton_framing(neck, hip, want_neck, want_torso):
    m = framing.framing_matrix(np.array(neck), np.array(hip), W, H)
    got_neck, got_hip = _apply(m, neck), _apply(m, hip)
    np.testing.assert_allclose(got_neck, want_neck, atol=1e-9)
    assert np.linalg.norm(got_hip - got_neck) == pytest.approx(want_torso, abs=1e-9)


def test_a_larger_photo_of_the_same_person_frames_the_same():
    """A 2x photo (pixel centres x2 = 2x + 0.5) maps each point where the 1x photo maps it."""
    neck, hip = np.array([95.0, 84.0]), np.array([96.0, 203.0])
    m2 = framing.framing_matrix(2 * neck + 0.5, 2 * hip + 0.5, 2 * W, 2 * H)
    for xy in ([0.0, 0.0], [191.0, 255.0], neck):
        np.testing.assert_allclose(_apply(m2, 2 * np.array(xy) + 0.5), xy, atol=1e-9)


def test_the_photos_bottom_edge_never_shows():
    """A photo cut at the waist (200 rows): zoomed in about the neck as far as the torso range
    allows, then moved down until its bottom edge is the frame's."""
    neck, hip = np.array([95.0, 84.0]), np.array([95.0, 204.0])
    m = framing.framing_matrix(neck, hip, W, 200)
    assert _apply(m, [0.0, 199.5])[1] == pytest.approx(H - 0.5, abs=1e-9)
    assert m[0, 0] == pytest.approx(framing.TORSO_RANGE[1] / 120, abs=1e-9)
    tall = framing.framing_matrix(neck, hip, W, 400)  # more photo below: no move down
    assert _apply(tall, [0.0, 399.5])[1] > H - 0.5


def test_invert_undoes_the_map():
    m = framing.framing_matrix(np.array([300.0, 260.0]), np.array([310.0, 600.0]), 640, 960)
    back = framing.invert(m)
    for xy in ([0.0, 0.0], [100.0, 37.5]):
        np.testing.assert_allclose(_apply(back, _apply(m, xy)), xy, atol=1e-9)


def test_paste_back_changes_only_the_models_region():
    """A 128x96 result put back into a 700x500 photo whose person the framing scaled by 0.5
    and moved: the region comes out in the result's colour, the photo elsewhere bit for bit."""
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (700, 500, 3), dtype=np.uint8)
    matrix = np.array([[0.5, 0, -60.0], [0, 0.5, -40.0]])  # photo -> 192x256 frame
    result = np.zeros((128, 96, 3), np.uint8)
    result[..., 0] = 250
    changed = np.zeros((128, 96))
    changed[40:80, 30:60] = 1  # frame pixels 80..159 x 60..119 -> photo rows 240..399, columns 240..359
    pasted = framing.paste_back(photo, result, changed, matrix, feather=2.0)
    assert pasted.shape == photo.shape and pasted.dtype == np.uint8
    np.testing.assert_array_equal(pasted[260:380, 260:340], result[0, 0] + np.zeros((120, 80, 3), np.uint8))
    differs = np.any(pasted != photo, axis=-1)
    ys, xs = np.nonzero(differs)
    # grown by 2 frame pixels (4 photo pixels) and blurred over 2 x 4: at most 16 photo pixels beyond
    assert ys.min() >= 240 - 16 and ys.max() < 400 + 16 and xs.min() >= 240 - 16 and xs.max() < 360 + 16
    assert differs[250:390, 250:350].all()


# Full-body framing (bottoms, dresses): Dress Code's persons, 192x256 frame coordinates.
DC_NECK, DC_ANKLE = np.array([96.5, 26.5]), np.array([96.0, 219.0])


def test_a_person_framed_like_dress_code_is_left_alone():
    """A 768x1024 photo with the median Dress Code person: the fit, a plain 1/4 scale."""
    photo = lambda p: (p + 0.5) * 4 - 0.5  # noqa: E731  (192x256 pixel centres -> 768x1024)
    m = framing.full_body_matrix(photo(DC_NECK), photo(DC_ANKLE), 768, 1024)
    np.testing.assert_allclose(m, framing.fit_matrix(768, 1024))


@pytest.mark.parametrize("neck,ankle,size", [
    ((300.0, 120.0), (300.0, 420.0), (1200, 900)),  # small in a landscape photo
    ((96.0, 5.0), (96.0, 250.0), (192, 256)),  # too large, neck at the top edge
    ((40.0, 60.0), (45.0, 200.0), (192, 256)),  # off to the left and small
])
def test_out_of_range_persons_move_into_dress_codes_framing(neck, ankle, size):
    m = framing.full_body_matrix(np.array(neck), np.array(ankle), *size)
    n, a = m @ np.append(neck, 1), m @ np.append(ankle, 1)
    assert framing.FULL_NECK_X_RANGE[0] - 1e-9 <= n[0] <= framing.FULL_NECK_X_RANGE[1] + 1e-9
    assert framing.FULL_NECK_Y_RANGE[0] - 1e-9 <= n[1] <= framing.FULL_NECK_Y_RANGE[1] + 1e-9
    assert framing.FULL_LENGTH_RANGE[0] - 1e-6 <= np.linalg.norm(a - n) <= framing.FULL_LENGTH_RANGE[1] + 1e-6
    assert m[0, 1] == m[1, 0] == 0 and m[0, 0] == m[1, 1]  # scale and shift only


def test_the_large_frame_is_the_same_framing_at_twice_the_pixels():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (1024, 768, 3), dtype=np.uint8)
    fit = framing.fit_matrix(768, 1024)
    big = framing.frame(photo, fit, (512, 384))
    np.testing.assert_array_equal(big, cv2.resize(photo, (384, 512), interpolation=cv2.INTER_AREA))
    small = cv2.resize(photo, (192, 256), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(framing.frame(photo, fit), small)
    with pytest.raises(ValueError, match="not 4:3"):
        framing.frame(photo, fit, (500, 384))
