"""Garment regions: which labels ACGPN's graph and training forward treat as the garment, the
skin it may redraw and what it keeps. The upper region is ACGPN's own (bit for bit: the golden
tests in tests/golden run with it); the lower and dress regions move the same steps to the legs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tryon_jax.acgpn import inference, objective, train_step
from tryon_jax.models import garment
from tryon_jax.models.spec import ModelSpec


def _label(h: int = 16, w: int = 12) -> np.ndarray:
    """A (1, h, w, 1) person: face, upper clothes with the arms beside it, pants, two legs, shoes."""
    lab = np.zeros((1, h, w, 1), np.float32)
    lab[0, 0:3, 4:8] = 12
    lab[0, 3:8, 3:9] = 4
    lab[0, 3:8, 1:3], lab[0, 3:8, 9:11] = 11, 13
    lab[0, 8:12, 3:9] = 8
    lab[0, 12:15, 3:6], lab[0, 12:15, 6:9] = 9, 10
    lab[0, 15, 3:9] = 5
    return lab


def test_regions_and_the_model_spec():
    assert garment.UPPER.changed == (4, 11, 13, 7) and 8 in garment.UPPER.kept and 4 not in garment.UPPER.kept
    assert set(garment.LOWER.changed) == {8, 9, 10} and {4, 11, 13, 12}.issubset(garment.LOWER.kept)
    assert set(garment.DRESSES.changed) == {7, 4, 8, 9, 10, 11, 13}
    with pytest.raises(ValueError, match="unknown garment region 'shoes'.*dresses.*lower.*upper"):
        garment.region("shoes")
    with pytest.raises(ValueError, match="unknown garment region"):
        ModelSpec(garment="shoes")
    lower = ModelSpec(garment="lower")
    assert lower.region is garment.LOWER and not lower.faithful and lower.released_shapes
    assert ModelSpec.from_dict(__import__("json").loads(lower.to_json())) == lower
    assert ModelSpec().region is garment.UPPER and ModelSpec().faithful
    assert not ModelSpec(height=64, width=48, garment="lower").released_shapes


def test_inputs_mask_the_regions_garment_and_skin():
    lab = _label()
    batch = {"label": jnp.asarray(lab), "image": jnp.ones(lab.shape[:3] + (3,)), "edge": jnp.ones_like(lab),
             "color": jnp.ones(lab.shape[:3] + (3,))}
    up, low = inference.encode_inputs(batch), inference.encode_inputs(batch, garment.LOWER)
    np.testing.assert_array_equal(up["mask_clothes"], lab == 4)
    np.testing.assert_array_equal(low["mask_clothes"], lab == 8)
    np.testing.assert_array_equal(up["arm1_mask"], lab == 11)
    np.testing.assert_array_equal(low["arm1_mask"], lab == 9)
    np.testing.assert_array_equal(low["arm2_mask"], lab == 10)
    # G1 sees the skin it may redraw as the garment; everything else as it is
    want_up = np.where(np.isin(lab, (11, 13, 7)), 4, lab)
    want_low = np.where(np.isin(lab, (9, 10)), 8, lab)
    np.testing.assert_array_equal(up["all_clothes_label"], want_up)
    np.testing.assert_array_equal(low["all_clothes_label"], want_low)
    dress = inference.encode_inputs(batch, garment.DRESSES)
    assert [k for k in dress if k.startswith("arm")] == ["arm1_mask", "arm2_mask", "arm3_mask", "arm4_mask"]
    np.testing.assert_array_equal(dress["all_clothes_label"], np.where(np.isin(lab, (4, 8, 9, 10, 11, 13)), 7, lab))


@pytest.mark.parametrize("region,garment_label", [(garment.UPPER, 4), (garment.LOWER, 8)])
def test_edits_clear_the_garment_and_keep_the_rest(region, garment_label):
    """With a perfect layout, the edited layout is the person's with the garment (and its
    one-pixel dilation into what the garment touches) cleared, the region's skin pasted back
    and every kept label untouched."""
    lab = jnp.asarray(_label())
    batch = {"label": lab, "image": jnp.ones(lab.shape[:3] + (3,)), "edge": jnp.ones_like(lab),
             "color": jnp.ones(lab.shape[:3] + (3,))}
    x = inference.encode_inputs(batch, region)
    thresh = (lab == garment_label).astype(jnp.float32)
    edits = inference.edit_labels(x, lab, thresh, region)
    out, lab = np.asarray(edits["armlabel_map"]), np.asarray(lab)
    assert (out[lab == garment_label] == 0).all()
    for skin in region.skin:
        np.testing.assert_array_equal(out[lab == skin], skin)
    near = np.asarray(edits["fake_cl_dis"]) > 0
    kept = np.isin(lab, region.kept) & ~near
    np.testing.assert_array_equal(out[kept], lab[kept])
    changed = np.asarray(inference.changed_region(jnp.asarray(lab), edits["fake_cl_dis"], edits["armlabel_map"],
                                                  region)) > 0
    np.testing.assert_array_equal(changed & ~near, np.isin(lab, region.changed) & ~near)


@pytest.mark.parametrize("name", ["lower", "dresses"])
def test_training_forward_opens_the_regions_holes(name):
    """The training forward's G input: the person without the garment, with the region's skin
    where the inpainting mask keeps it (all of it with no holes, none of it under one hole)."""
    spec = ModelSpec(height=64, width=48, ngf=4, ndf=4, num_d=1, n_layers_d=1, garment=name)
    variables = train_step.init_variables(0, spec)
    lab = np.kron(_label(), np.ones((1, 4, 4, 1), np.float32))
    if name == "dresses":
        lab = np.where(np.isin(lab, (4, 8)), 7, lab)
    rng = np.random.default_rng(0)
    batch = {"label": jnp.asarray(lab), "image": jnp.asarray(rng.uniform(0.1, 1, lab.shape[:3] + (3,)), jnp.float32),
             "edge": jnp.ones_like(jnp.asarray(lab)), "color": jnp.zeros(lab.shape[:3] + (3,)),
             "pose": jnp.zeros(lab.shape[:3] + (18,))}
    noise = inference.draw_noise(jax.random.key(0), 1, 64, 48)
    region = spec.region
    for hole, skin_shown in ((0.0, True), (1.0, False)):
        out = objective.forward(variables, {**batch, "mask": jnp.full_like(batch["edge"], hole)}, noise, spec=spec)
        shown = np.abs(np.asarray(out["img_hole_hand"])).sum(-1) > 0
        assert not shown[lab[..., 0] == region.garment[0]].any()
        assert (shown[np.isin(lab[..., 0], region.skin)] == skin_shown).all()
        assert shown[np.isin(lab[..., 0], region.kept)].all()
        assert np.isfinite(float(out["loss_G"])) and np.isfinite(float(out["loss_D"]))


def test_a_category_needs_a_model_of_its_region():
    from tryon_jax.data.catalogue import NotTryable, musinsa_cloths, tryon_refusal
    assert tryon_refusal("top") is None and tryon_refusal("bottom", ("upper", "lower")) is None
    assert "no lower-body model is configured" in tryon_refusal("bottom")
    assert "no upper-body model is configured" in tryon_refusal("top", ("lower",))
    with pytest.raises(NotTryable, match="--musinsa-category top: tops cannot be tried on"):
        musinsa_cloths("unused", "top", region="lower")
