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
from tryon_jax.models import layers
from tryon_jax.models.networks import acgpn_module
from tryon_jax.models.spec import DEFAULT as DEFAULT_SPEC
from tryon_jax.models.spec import ModelSpec

NUM_LABELS = 14
ARM1, ARM2, NOISE, CLOTHES = 11, 13, 7, 4
NOISE_NAMES = ("noise_G1", "noise_G2", "noise_G")
# cv2.randn(uint8 array, 0, 255) / 255 -> astype(uint8) is 1 only where the sample rounds to
# 255, i.e. N(0, 255) >= 254.5 (quirk 8).
_NOISE_THRESHOLD = 254.5 / 255.0


def derive_inputs(batch: dict) -> dict:
    """test.py's pre-processing: clothes and foreground masks, foreground image and the label
    with arms and 'noise' (dress) relabelled as clothes (quirk 2: the label itself is not washed)."""
    label = batch["label"]
    mask_clothes = (label == CLOTHES).astype(jnp.float32)
    mask_fore = (label > 0).astype(jnp.float32)
    relabel = (label == ARM1) | (label == ARM2) | (label == NOISE)
    return {"mask_clothes": mask_clothes, "mask_fore": mask_fore, "img_fore": batch["image"] * mask_fore,
            "all_clothes_label": jnp.where(relabel, float(CLOTHES), label)}


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


def encode_inputs(batch: dict) -> dict:
    """encode_input + the masks of Pix2PixHDModel.forward: one-hot labels, arm masks, the
    thresholded cloth mask (quirk 3: edge > 0.5, cloth outside it is 0, not -1)."""
    label = batch["label"]
    out = derive_inputs(batch)
    pre_clothes_mask = (batch["edge"] > 0.5).astype(jnp.float32)
    out.update(
        input_label=layers.one_hot(label, NUM_LABELS),
        masked_label=layers.one_hot(label * (1 - out["mask_clothes"]), NUM_LABELS),
        all_clothes_label_onehot=layers.one_hot(out["all_clothes_label"], NUM_LABELS),
        arm1_mask=(label == ARM1).astype(jnp.float32), arm2_mask=(label == ARM2).astype(jnp.float32),
        pre_clothes_mask=pre_clothes_mask, clothes=batch["color"] * pre_clothes_mask)
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


def edit_labels(x: dict, armlabel_map_argmax, fake_cl_dis_thresh) -> dict:
    """The discrete edits between G2 and U (quirks 6, 7): dilate the cloth mask, take predicted
    arms out of it, remove predicted arms from the layout, paste the arms back (11 then 13),
    and clear the predicted clothes region to class 0."""
    mask_clothes, mask_fore = x["mask_clothes"], x["mask_fore"]
    dilated = layers.dilate_cross(fake_cl_dis_thresh, 1)
    new_arm1 = (armlabel_map_argmax == ARM1).astype(jnp.float32)
    new_arm2 = (armlabel_map_argmax == ARM2).astype(jnp.float32)
    noarm = dilated * (1 - new_arm1) * (1 - new_arm2)
    fake_cl_dis = noarm * mask_fore
    arm1_occ, arm2_occ = mask_clothes * new_arm1, mask_clothes * new_arm2
    arm1_full = arm1_occ + (1 - mask_clothes) * x["arm1_mask"]
    arm2_full = arm2_occ + (1 - mask_clothes) * x["arm2_mask"]
    step1 = armlabel_map_argmax * (1 - new_arm1)
    step2 = step1 * (1 - new_arm2)
    step3 = step2 * (1 - arm1_full) + arm1_full * ARM1
    step4 = step3 * (1 - arm2_full) + arm2_full * ARM2
    armlabel_map = step4 * (1 - fake_cl_dis)
    return {"fake_cl_dis_dilated": dilated, "new_arm1_mask": new_arm1, "new_arm2_mask": new_arm2,
            "fake_cl_dis_noarm": noarm, "fake_cl_dis": fake_cl_dis, "arm1_occ": arm1_occ, "arm2_occ": arm2_occ,
            "bigger_arm1_occ": layers.dilate_cross(arm1_occ, 10), "bigger_arm2_occ": layers.dilate_cross(arm2_occ, 10),
            "arm1_full": arm1_full, "arm2_full": arm2_full, "armlabel_map_step1_noarm1": step1,
            "armlabel_map_step2_noarm2": step2, "armlabel_map_step3_arm1full": step3,
            "armlabel_map_step4_arm2full": step4, "armlabel_map": armlabel_map,
            "dis_label": layers.one_hot(armlabel_map, NUM_LABELS)}


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


def generator_inputs(x: dict, edits: dict, fake_c, image, noise) -> dict:
    """G's input (quirks 18, 19): the person with cloth and occluded arms cut out, the edited
    layout, the composed cloth, the mean skin colour and noise."""
    arms = x["arm1_mask"] + x["arm2_mask"] - x["arm2_mask"] * x["arm1_mask"]
    skin_color = skin_color_map(arms, image)
    touching = x["arm2_mask"] + x["arm1_mask"] + x["mask_clothes"]
    occlude = (1 - edits["bigger_arm1_occ"] * touching) * (1 - edits["bigger_arm2_occ"] * touching)
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


def changed_region(label, fake_cl_dis, armlabel_map):
    """Where a try-on replaces the person by design, (B,H,W,1) in {0, 1}: the person's clothes,
    dress and arms, and the new garment and arms. Elsewhere G only redraws the person."""
    old = (label == CLOTHES) | (label == NOISE) | (label == ARM1) | (label == ARM2)
    new = (fake_cl_dis > 0.5) | (armlabel_map == ARM1) | (armlabel_map == ARM2)
    return (old | new).astype(jnp.float32)


def tryon_graph(variables: dict, batch: dict, noise_or_key, inject: dict | None = None, dtype=None,
                spec: ModelSpec = DEFAULT_SPEC) -> dict:
    """The un-jitted four-stage graph; see ``tryon``."""
    label, image, pose = batch["label"], batch["image"], batch["pose"]
    b, h, w, _ = label.shape
    noise = noise_or_key if isinstance(noise_or_key, dict) else draw_noise(noise_or_key, b, h, w)
    inject = inject or {}
    out = dict(noise)
    x = encode_inputs(batch)
    out.update(x)
    out.update(layout_stage(variables["G1"], x, pose, label, noise["noise_G1"], dtype, spec))
    argmax = inject.get("armlabel_map_argmax", out["armlabel_map_argmax"])
    out["armlabel_map_argmax"] = argmax
    out.update(mask_stage(variables["G2"], x, pose, argmax, noise["noise_G2"], dtype, spec))
    out["CE_loss"] = out["CE_loss_G1"] + out.pop("BCE_G2_x10")
    thresh = inject.get("fake_cl_dis_thresh", out["fake_cl_dis_thresh"])
    out["fake_cl_dis_thresh"] = thresh
    out.update(edit_labels(x, argmax, thresh))
    out["changed"] = changed_region(label, out["fake_cl_dis"], out["armlabel_map"])
    out.update(warp_stage(variables["U"], x, out["fake_cl_dis"], image, dtype, spec))
    out.update(generator_inputs(x, out, out["fake_c"], image, noise["noise_G"]))
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
