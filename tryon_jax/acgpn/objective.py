"""ACGPN_train's forward pass and every loss term (Pix2PixHDModel.forward of ACGPN_train).

Differences from inference, all copied (golden README 17, 21-26): G2 is fed the ground-truth
masked label, the STN's reference is the ground-truth clothes mask, G is fed the masked label
and the real clothes, D3 and the L1 terms see the raw tanh ``fake_c`` (no fake_cl_dis factor),
the loader's inpainting ``mask`` opens holes over the arms (the region's skin), and the discriminators compare
(input, fake) with (input, real). Returns every term under the golden's names.
"""
import jax
import jax.numpy as jnp

from tryon_jax.acgpn import inference, losses
from tryon_jax.models.networks import acgpn_module
from tryon_jax.models.spec import DEFAULT as DEFAULT_SPEC
from tryon_jax.models.spec import ModelSpec


def feature_weight(spec: ModelSpec) -> float:
    """(1/num_D) * (4/(n_layers+1)) * 5 per feature-matching term (golden README 21): 2.5 in ACGPN."""
    return (1.0 / spec.num_d) * (4.0 / (spec.n_layers_d + 1)) * 5.0


def _gan_terms(name, d_variables, condition, fake, real, feature_matching: bool, spec: ModelSpec, dtype=None) -> dict:
    """LSGAN terms of one discriminator; pool_size 0, so the 'fake pool' prediction is the fake one.

    The generator's prediction sees the discriminator through stop_gradient: the values are the
    original's, and one backward pass of loss_G + loss_D gives each optimizer its own gradient
    (G from loss_G only, D from loss_D only), as the original's two backward calls do."""
    disc = acgpn_module(name, dtype, spec).apply
    pred_fake_pool = disc(d_variables, jnp.concatenate([condition, jax.lax.stop_gradient(fake)], -1))
    pred_real = disc(d_variables, jnp.concatenate([condition, real], -1))
    pred_fake = disc(jax.lax.stop_gradient(d_variables), jnp.concatenate([condition, fake], -1))
    per_scale = lambda preds, target: [jnp.mean(jnp.square(s[-1] - target)) for s in preds]  # noqa: E731
    out = {f"{name}/D_fake_per_scale": per_scale(pred_fake_pool, 0.0),
           f"{name}/D_real_per_scale": per_scale(pred_real, 1.0),
           f"{name}/G_GAN_per_scale": per_scale(pred_fake, 1.0)}
    for key in ("D_fake", "D_real", "G_GAN"):
        out[f"{name}/{key}"] = sum(out[f"{name}/{key}_per_scale"])
    if feature_matching:
        raw = [[jnp.mean(jnp.abs(f - jax.lax.stop_gradient(r))) for f, r in zip(fs[:-1], rs[:-1])]
               for fs, rs in zip(pred_fake, pred_real)]
        out[f"{name}/feat_match_L1_raw[scale][layer]"] = raw
        out[f"{name}/feat_match_weighted_sum"] = feature_weight(spec) * sum(sum(r) for r in raw)
    return out


def forward(variables: dict, batch: dict, noise: dict, deterministic: bool = True, dropout_key=None,
            spec: ModelSpec = DEFAULT_SPEC, corrected: bool = False, dtype=None) -> dict:
    """One ACGPN_train forward. ``variables``: G1, G2, U, G, D1, D2, D3, D and VGG19 (optional:
    without it the perceptual terms are 0). ``batch``: the train loader's tensors (NHWC):
    label (washed: 7 -> 4 for tops), image, edge, color, pose, mask (inpainting mask). ``noise``: the
    three binary maps. ``corrected``: the cross-entropy and BCE take G1's and G2's logits
    instead of their sigmoids (the original applies sigmoid twice, quirk 4). ``dtype``: the
    networks' compute dtype (e.g. bfloat16; None computes in the parameters' dtype); norms,
    outputs and every loss stay in float32 or wider. Returns intermediates and every loss term."""
    module = lambda name: acgpn_module(name, dtype, spec)  # noqa: E731
    label, image, pose, hole = batch["label"], batch["image"], batch["pose"], batch["mask"]
    region = spec.region
    x = inference.encode_inputs(batch, region)
    cm, masked_label = x["mask_clothes"], x["masked_label"]
    rngs = {} if deterministic else {"dropout": dropout_key}

    g1_in = jnp.concatenate([x["pre_clothes_mask"], x["clothes"], x["all_clothes_label_onehot"], pose,
                             noise["noise_G1"]], -1)
    g1_logits = module("G1").apply(variables["G1"], g1_in)
    arm_label = jax.nn.sigmoid(g1_logits)
    ce_raw = losses.cross_entropy2d(g1_logits if corrected else arm_label,
                                    (label * (1 - cm))[..., 0].astype(jnp.int32))
    # Quirk 23: G2 gets the ground-truth masked label, not G1's argmax.
    g2_in = jnp.concatenate([x["pre_clothes_mask"], x["clothes"], masked_label, pose, noise["noise_G2"]], -1)
    g2_logits = module("G2").apply(variables["G2"], g2_in)
    fake_cl = jax.nn.sigmoid(g2_logits)
    bce_raw = losses.bce_with_logits(g2_logits if corrected else fake_cl, cm)

    # U with the ground-truth clothes mask as reference; the picture warped alongside is unused.
    u_out = module("U").apply(variables["U"], x["clothes"], cm, x["pre_clothes_mask"], x["clothes"],
                                    deterministic, rngs=rngs)
    warped, warped_mask = u_out["warped"], u_out["warped_mask"]
    raw = u_out["fake_c_unet_raw"]
    composition_mask = jax.nn.sigmoid(raw[..., 3])  # (B, H, W): no fake_cl_dis factor in training
    fake_c = jnp.tanh(raw[..., :3])
    m = composition_mask[..., None]
    comp_fake_c = jax.lax.stop_gradient(fake_c) * (1 - m) + m * jax.lax.stop_gradient(warped)

    skins = inference.skin_masks(x, region)
    skin_color = inference.skin_color_map(inference.union(skins), image)
    img_fore = x["img_fore"]
    img_hole_hand = img_fore * (1 - cm)
    for m in skins:  # the person without garment and skin, plus the skin outside the inpainting holes
        img_hole_hand = img_hole_hand * (1 - m)
    for m in skins:
        img_hole_hand = img_hole_hand + img_fore * m * (1 - hole)
    real_clothes = image * cm
    g_in = jnp.concatenate([img_hole_hand, masked_label, real_clothes, skin_color, noise["noise_G"]], -1)
    fake_image = inference.image_output(module("G").apply(variables["G"], jax.lax.stop_gradient(g_in)), spec)
    fake_image_replace = fake_image * (1 - cm) + cm * image

    out = {"arm_label": arm_label, "fake_cl": fake_cl, "masked_label": masked_label, "G1_in": g1_in, "G2_in": g2_in,
           "G_in": g_in, "source_control_points": u_out["source_control_points"], "warped": warped,
           "warped_mask": warped_mask, "composition_mask": composition_mask, "fake_c": fake_c,
           "comp_fake_c": comp_fake_c, "img_hole_hand": img_hole_hand, "skin_color": skin_color,
           "fake_image": fake_image, "fake_image_replace": fake_image_replace}
    out.update({"CE_G1_cross_entropy2d_raw": ce_raw, "CE_G1_x10": 10 * ce_raw, "BCE_G2_raw": bce_raw,
                "BCE_G2_x10": 10 * bce_raw})

    # Discriminators (quirk 22); feature matching for D and D3 only (pool indices 2 and 3).
    d3_condition = jnp.concatenate([cm, x["clothes"]], -1)
    for name, condition, fake, real, fm in (("D1", g1_in, arm_label, masked_label, False),
                                            ("D2", g2_in, fake_cl, cm, False),
                                            ("D", g_in, fake_image_replace, image, True),
                                            ("D3", d3_condition, fake_c, real_clothes, True)):
        out.update(_gan_terms(name, variables[name], jax.lax.stop_gradient(condition), fake, real, fm, spec, dtype))

    vgg = variables.get("VGG19")
    if vgg is not None:
        out["VGG_warp(warped, real*cm)_x1"] = losses.vgg_loss_warp(vgg, warped, real_clothes)
        out["VGG_warp(comp_fake_c, real*cm)_raw"] = losses.vgg_loss_warp(vgg, comp_fake_c, real_clothes)
        out["VGG_warp(fake_c, real*cm)_raw"] = losses.vgg_loss_warp(vgg, fake_c, real_clothes)
        per_slice = losses.vgg_l1_per_slice(vgg, fake_image_replace, image)
        out["VGG(fake_image_replace, real)_per_slice_L1"] = per_slice
        out["VGG(fake_image_replace, real)_raw"] = sum(w * v for w, v in zip(losses.VGG_WEIGHTS, per_slice))
    else:
        for key in ("VGG_warp(warped, real*cm)_x1", "VGG_warp(comp_fake_c, real*cm)_raw",
                    "VGG_warp(fake_c, real*cm)_raw", "VGG(fake_image_replace, real)_raw"):
            out[key] = jnp.zeros(())
    l1 = lambda a, b: jnp.mean(jnp.abs(a - b))  # noqa: E731
    out.update({"L1(fake_image, real)_raw": l1(fake_image, image), "L1(warped_mask, cm)_raw": l1(warped_mask, cm),
                "L1(warped, real*cm)_raw": l1(warped, real_clothes), "L1(fake_c, real*cm)_raw": l1(fake_c, real_clothes),
                "L1(comp_fake_c, real*cm)_raw": l1(comp_fake_c, real_clothes),
                # Quirk 25: (B,H,W) vs (B,1,H,W) broadcasting in the original is only right for B=1;
                # here the mask is compared per sample, which equals it at B=1.
                "L1(composition_mask, cm)_raw": l1(composition_mask, cm[..., 0])})
    stn = {k: 0.1 * u_out[f"{k}_loss"] for k in ("rx", "ry", "cx", "cy", "rg", "cg")}
    out.update({f"{k}*0.1": v for k, v in stn.items()})
    return _totals(out, stn)


def _totals(out: dict, stn: dict) -> dict:
    nets = ("D1", "D2", "D", "D3")
    out["totals"] = {"G_GAN": sum(out[f"{n}/G_GAN"] for n in nets),
                     "G_GAN_Feat": out["D/feat_match_weighted_sum"] + out["D3/feat_match_weighted_sum"],
                     "G_VGG": (out["VGG_warp(warped, real*cm)_x1"] + 10 * out["VGG_warp(comp_fake_c, real*cm)_raw"]
                               + 20 * out["VGG_warp(fake_c, real*cm)_raw"] + 5 * out["VGG(fake_image_replace, real)_raw"]),
                     "D_real": sum(out[f"{n}/D_real"] for n in nets),
                     "D_fake": sum(out[f"{n}/D_fake"] for n in nets)}
    out["L1_loss"] = (10 * out["L1(fake_image, real)_raw"] + out["L1(warped_mask, cm)_raw"]
                      + out["L1(warped, real*cm)_raw"] + 0.2 * out["L1(fake_c, real*cm)_raw"]
                      + 10 * out["L1(comp_fake_c, real*cm)_raw"] + out["L1(composition_mask, cm)_raw"])
    out["CE_loss"] = out["CE_G1_x10"] + out["BCE_G2_x10"]
    t = out["totals"]
    out["loss_D"] = 0.5 * (t["D_fake"] + t["D_real"])
    out["loss_G"] = t["G_GAN"] + t["G_GAN_Feat"] + t["G_VGG"] + out["L1_loss"] + out["CE_loss"] + sum(stn.values())
    return out
