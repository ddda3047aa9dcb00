"""ACGPN inference (ACGPN_inference/test.py + Pix2PixHDModel.forward) as one jitted, batched graph.

Inputs are the original loader's tensors in NHWC float32: ``label`` (B,H,W,1) class ids,
``image`` and ``color`` (B,H,W,3) in [-1, 1], ``edge`` (B,H,W,1) in [0, 1], ``pose``
(B,H,W,18) in [-1, 1]. Outputs use the golden intermediates' names, in NHWC. The numbered
quirks refer to ../shared/golden/acgpn/README.md; every one is reproduced.
"""

import jax
import jax.numpy as jnp

from tryon_jax.acgpn import losses
from tryon_jax.core import xla_cpu
from tryon_jax.models import garment as garment_lib
from tryon_jax.models import layers
from tryon_jax.models.garment import UPPER, GarmentRegion
from tryon_jax.models.networks import acgpn_module
from tryon_jax.models.spec import DEFAULT as DEFAULT_SPEC
from tryon_jax.models.spec import ModelSpec

NUM_LABELS = garment_lib.NUM_LABELS
NOISE_NAMES = ("noise_G1", "noise_G2", "noise_G")
# cv2.randn(uint8 array, 0, 255) / 255 -> astype(uint8) is 1 only where the sample rounds to
# 255, i.e. N(0, 255) >= 254.5 (quirk 8).
_NOISE_THRESHOLD = 254.5 / 255.0


def _is(label, ids) -> jax.Array:
    """label is one of ``ids`` (bool, same shape)."""
    out = label == ids[0]
    for i in ids[1:]:
        out = out | (label == i)
    return out


def derive_inputs(batch: dict, region: GarmentRegion = UPPER) -> dict:
    """test.py's pre-processing: clothes and foreground masks, foreground image and the label
    with the skin and the replaced labels relabelled as the garment (for tops: arms and 'noise'
    as clothes; quirk 2: the label itself is not washed)."""
    label = batch["label"]
    mask_clothes = _is(label, region.garment).astype(jnp.float32)
    mask_fore = (label > 0).astype(jnp.float32)
    relabel = _is(label, region.skin + region.replaced)
    return {"mask_clothes": mask_clothes, "mask_fore": mask_fore, "img_fore": batch["image"] * mask_fore,
            "all_clothes_label": jnp.where(relabel, float(region.label), label)}


def skin_masks(x: dict, region: GarmentRegion) -> list:
    """The person's skin masks in the region's order (arm1, arm2 for tops)."""
    return [x[f"arm{i + 1}_mask"] for i in range(len(region.skin))]


def union(masks: list) -> jax.Array:
    """a + b - b * a, folded: the union of {0, 1} masks (the original's arms for two)."""
    out = masks[0]
    for m in masks[1:]:
        out = out + m - m * out
    return out


def draw_noise(key: jax.Array, batch_size: int, height: int, width: int) -> dict:
    """The three binary noise maps, P(1) = P(Z >= 254.5/255) ~ 0.159, in draw order G1, G2, G.

    ``key`` is one PRNG key for the batch, or a (B,) array of keys, one per example (then each
    example's noise does not depend on the batch it is in)."""
    if key.ndim == 1:
        per_example = jax.vmap(lambda k: draw_noise(k, 1, height, width))(key)
        return {k: v[:, 0] for k, v in per_example.items()}
    keys = jax.random.split(key, len(NOISE_NAMES))
    return {name: (jax.random.normal(k, (batch_size, height, width, 1)) >= _NOISE_THRESHOLD).astype(jnp.float32)
            for name, k in zip(NOISE_NAMES, keys)}


def skin_color_map(arm_mask: jax.Array, image: jax.Array) -> jax.Array:
    """ger_average_color: per-channel sum of image over the arms / arm pixel count; 0 when the
    arms cover fewer than 10 pixels (quirk 18). A constant map per sample."""
    count = jnp.sum(arm_mask, axis=(1, 2, 3))
    total = jnp.sum(arm_mask * image, axis=(1, 2))
    mean = total / jnp.maximum(count, 1)[:, None]
    mean = jnp.where((count >= 10)[:, None], mean, 0.0)
    return jnp.broadcast_to(mean[:, None, None, :], image.shape)


def _apply(name, variables, *args, dtype=None, capture=False, spec=DEFAULT_SPEC):
    module = acgpn_module(name, dtype, spec)
    if capture:
        return module.apply(variables, *args, mutable=["intermediates"])
    return module.apply(variables, *args)


def encode_inputs(batch: dict, region: GarmentRegion = UPPER) -> dict:
    """encode_input + the masks of Pix2PixHDModel.forward: one-hot labels, skin masks (arm1_mask,
    arm2_mask, ... in the region's order), the thresholded cloth mask (quirk 3: edge > 0.5,
    cloth outside it is 0, not -1)."""
    label = batch["label"]
    out = derive_inputs(batch, region)
    pre_clothes_mask = (batch["edge"] > 0.5).astype(jnp.float32)
    out.update(
        input_label=layers.one_hot(label, NUM_LABELS),
        masked_label=layers.one_hot(label * (1 - out["mask_clothes"]), NUM_LABELS),
        all_clothes_label_onehot=layers.one_hot(out["all_clothes_label"], NUM_LABELS),
        pre_clothes_mask=pre_clothes_mask, clothes=batch["color"] * pre_clothes_mask)
    out.update({f"arm{i + 1}_mask": (label == s).astype(jnp.float32) for i, s in enumerate(region.skin)})
    return out


def layout_stage(g1_variables, x: dict, pose, label, noise, dtype=None, spec=DEFAULT_SPEC) -> dict:
    """Stage 1, G1 (Refine 37->14): the semantic layout; quirk 9 channel order."""
    g1_in = jnp.concatenate([x["pre_clothes_mask"], x["clothes"], x["all_clothes_label_onehot"], pose, noise], -1)
    logits = _apply("G1", g1_variables, g1_in, dtype=dtype, spec=spec)
    return {"G1_in": g1_in, "arm_label_logits": logits, **layout_decision(jax.nn.sigmoid(logits), label,
                                                                           x["mask_clothes"])}


def layout_decision(arm_label, label, mask_clothes) -> dict:
    """Quirk 4: softmax CE of the *sigmoid outputs* vs label*(1-mask_clothes), x10; quirk 5:
    argmax with the first maximal index on ties."""
    ce_target = (label * (1 - mask_clothes))[..., 0].astype(jnp.int32)
    return {"arm_label": arm_label, "CE_loss_G1": losses.cross_entropy2d(arm_label, ce_target) * 10,
            "armlabel_map_argmax": jnp.argmax(arm_label, axis=-1)[..., None].astype(jnp.float32)}


def mask_stage(g2_variables, x: dict, pose, armlabel_map_argmax, noise, dtype=None, spec=DEFAULT_SPEC) -> dict:
    """Stage 2, G2 (Refine 37->1): the target cloth mask."""
    onehot = layers.one_hot(armlabel_map_argmax, NUM_LABELS)
    g2_in = jnp.concatenate([x["pre_clothes_mask"], x["clothes"], onehot, pose, noise], -1)
    logits = _apply("G2", g2_variables, g2_in, dtype=dtype, spec=spec)
    return {"dis_label_argmax_onehot": onehot, "G2_in": g2_in, "fake_cl_logits": logits,
            **mask_decision(jax.nn.sigmoid(logits), x["mask_clothes"])}


def mask_decision(fake_cl, mask_clothes) -> dict:
    """Quirk 4: BCEWithLogits on the already-sigmoided mask (x10)."""
    return {"fake_cl": fake_cl, "BCE_G2_x10": losses.bce_with_logits(fake_cl, mask_clothes) * 10,
            "fake_cl_dis_thresh": (fake_cl > 0.5).astype(jnp.float32)}


def edit_labels(x: dict, armlabel_map_argmax, fake_cl_dis_thresh, region: GarmentRegion = UPPER) -> dict:
    """The discrete edits between G2 and U (quirks 6, 7): dilate the cloth mask, take the
    predicted skin out of it, remove the predicted skin from the layout, paste the skin back
    (11 then 13 for tops), and clear the predicted clothes region to class 0. ``armN`` names
    the region's N-th skin label (the arms for tops, the legs for bottoms)."""
    mask_clothes, mask_fore = x["mask_clothes"], x["mask_fore"]
    n = len(region.skin)
    out = {"fake_cl_dis_dilated": layers.dilate_cross(fake_cl_dis_thresh, 1)}
    noarm = out["fake_cl_dis_dilated"]
    new = [(armlabel_map_argmax == s).astype(jnp.float32) for s in region.skin]
    for m in new:
        noarm = noarm * (1 - m)
    fake_cl_dis = noarm * mask_fore
    out.update(fake_cl_dis_noarm=noarm, fake_cl_dis=fake_cl_dis)
    step = armlabel_map_argmax
    for i, (m, skin) in enumerate(zip(new, skin_masks(x, region))):
        occ = mask_clothes * m
        out.update({f"new_arm{i + 1}_mask": m, f"arm{i + 1}_occ": occ, f"bigger_arm{i + 1}_occ":
                    layers.dilate_cross(occ, 10), f"arm{i + 1}_full": occ + (1 - mask_clothes) * skin})
        step = step * (1 - m)
        out[f"armlabel_map_step{i + 1}_noarm{i + 1}"] = step
    for i, s in enumerate(region.skin):
        full = out[f"arm{i + 1}_full"]
        step = step * (1 - full) + full * s
        out[f"armlabel_map_step{n + i + 1}_arm{i + 1}full"] = step
    out["armlabel_map"] = step * (1 - fake_cl_dis)
    out["dis_label"] = layers.one_hot(out["armlabel_map"], NUM_LABELS)
    return out


def warp_stage(u_variables, x: dict, fake_cl_dis, image, dtype=None, spec=DEFAULT_SPEC) -> dict:
    """Stage 3, U: TPS warp of the cloth (quirks 11-16), the U-Net body and the composition."""
    out, state = _apply("U", u_variables, x["clothes"], fake_cl_dis, x["pre_clothes_mask"], image, dtype=dtype,
                        capture=True, spec=spec)
    out["locnet_input"] = jnp.concatenate([x["pre_clothes_mask"], fake_cl_dis, x["clothes"]], -1)
    out["U_conv5"] = state["intermediates"]["conv5"][0]
    out["locnet_fc1_in"] = state["intermediates"]["stn"]["loc_net"]["cnn"]["locnet_fc1_in"][0]
    out.update(compose(out["fake_c_unet_raw"], fake_cl_dis, out["warped"]))
    return out


def compose(raw, fake_cl_dis, warped) -> dict:
    """Quirks 17, 28: mask = sigmoid(raw[..., 3]) * fake_cl_dis, fake_c = tanh(raw[..., :3])
    blended with the warped cloth."""
    logit = raw[..., 3]
    mask = jax.nn.sigmoid(logit)[..., None] * fake_cl_dis
    fake_c_tanh = jnp.tanh(raw[..., :3])
    return {"composition_mask_logit": logit, "composition_mask": mask, "fake_c_tanh": fake_c_tanh,
            "fake_c": fake_c_tanh * (1 - mask) + mask * warped}


def generator_inputs(x: dict, edits: dict, fake_c, image, noise, region: GarmentRegion = UPPER) -> dict:
    """G's input (quirks 18, 19): the person with cloth and occluded skin cut out, the edited
    layout, the composed cloth, the mean skin colour and noise."""
    skins = skin_masks(x, region)
    skin_color = skin_color_map(union(skins), image)
    touching = x["mask_clothes"] + sum(skins)
    occlude = 1.0
    for i in range(len(skins)):
        occlude = occlude * (1 - edits[f"bigger_arm{i + 1}_occ"] * touching)
    img_hole_hand = x["img_fore"] * (1 - x["mask_clothes"]) * occlude * (1 - edits["fake_cl_dis"])
    g_in = jnp.concatenate([img_hole_hand, edits["dis_label"], fake_c, skin_color, noise], -1)
    return {"skin_color": skin_color, "occlude": occlude, "img_hole_hand": img_hole_hand, "G_in": g_in}


def image_stage(g_variables, g_in, dtype=None, spec=DEFAULT_SPEC) -> dict:
    """Stage 4, G (Refine 24->3, or pix2pixHD's LocalEnhancer): the try-on image."""
    raw = _apply("G", g_variables, g_in, dtype=dtype, spec=spec)
    return {"fake_image_logits": raw, "fake_image": image_output(raw, spec)}


def image_output(raw, spec: ModelSpec):
    """The image from G's raw output: Refine returns logits, the LocalEnhancer ends in tanh."""
    return raw if spec.image_generator == "local_enhancer" else jnp.tanh(raw)


def changed_region(label, fake_cl_dis, armlabel_map, region: GarmentRegion = UPPER):
    """Where a try-on replaces the person by design, (B,H,W,1) in {0, 1}: the person's garment,
    its skin and what goes with it (for tops: clothes, dress and arms), and the new garment
    and skin. Elsewhere (``region.kept``) G only redraws the person."""
    old = _is(label, region.changed)
    new = (fake_cl_dis > 0.5) | _is(armlabel_map, region.skin)
    return (old | new).astype(jnp.float32)


def tryon_graph(variables: dict, batch: dict, noise_or_key, inject: dict | None = None, dtype=None,
                spec: ModelSpec = DEFAULT_SPEC) -> dict:
    """The un-jitted four-stage graph; see ``tryon``."""
    label, image, pose = batch["label"], batch["image"], batch["pose"]
    b, h, w, _ = label.shape
    noise = noise_or_key if isinstance(noise_or_key, dict) else draw_noise(noise_or_key, b, h, w)
    inject = inject or {}
    out = dict(noise)
    region = spec.region
    x = encode_inputs(batch, region)
    out.update(x)
    out.update(layout_stage(variables["G1"], x, pose, label, noise["noise_G1"], dtype, spec))
    argmax = inject.get("armlabel_map_argmax", out["armlabel_map_argmax"])
    out["armlabel_map_argmax"] = argmax
    out.update(mask_stage(variables["G2"], x, pose, argmax, noise["noise_G2"], dtype, spec))
    out["CE_loss"] = out["CE_loss_G1"] + out.pop("BCE_G2_x10")
    thresh = inject.get("fake_cl_dis_thresh", out["fake_cl_dis_thresh"])
    out["fake_cl_dis_thresh"] = thresh
    out.update(edit_labels(x, argmax, thresh, region))
    out["changed"] = changed_region(label, out["fake_cl_dis"], out["armlabel_map"], region)
    out.update(warp_stage(variables["U"], x, out["fake_cl_dis"], image, dtype, spec))
    out.update(generator_inputs(x, out, out["fake_c"], image, noise["noise_G"], region))
    out.update(image_stage(variables["G"], out["G_in"], dtype, spec))
    return out


@xla_cpu.jit(static_argnames=("dtype", "spec"))
def tryon(variables: dict, batch: dict, noise_or_key, inject: dict | None = None, dtype=None,
          spec: ModelSpec = DEFAULT_SPEC) -> dict:
    """Batched ACGPN try-on: G1 layout -> G2 cloth mask -> U warp + composition -> G image.

    ``variables``: {"G1", "G2", "U", "G"} Flax variables (tryon_jax.weights.convert.acgpn_variables).
    ``noise_or_key``: a PRNG key (or a (B,) array of per-example keys), or a dict of the three
    (B,H,W,1) noise maps to inject.
    ``inject``: optional ``armlabel_map_argmax`` / ``fake_cl_dis_thresh`` maps that replace the
    discrete decisions (for comparisons with a reference). ``dtype``: conv compute dtype
    (e.g. jnp.bfloat16); None keeps float32. ``spec``: the model's shapes (default: ACGPN at
    256x192); the batch must be at its resolution. Returns every named intermediate.
    """
    return tryon_graph(variables, batch, noise_or_key, inject, dtype, spec)
