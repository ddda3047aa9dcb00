"""ACGPN / pix2pixHD loss terms (the ones the inference graph reports live here too)."""
import jax
import jax.numpy as jnp

from tryon_jax.models.layers import at_least_float32

IGNORE_INDEX = 250


def cross_entropy2d(logits: jax.Array, target: jax.Array) -> jax.Array:
    """F.cross_entropy over (B, H, W, C) scores and (B, H, W) integer targets, mean over the
    pixels whose target is not 250 (ACGPN's cross_entropy2d, ignore_index=250)."""
    logp = jax.nn.log_softmax(at_least_float32(logits), axis=-1)
    valid = target != IGNORE_INDEX
    safe = jnp.where(valid, target, 0).astype(jnp.int32)
    nll = -jnp.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
    return jnp.sum(jnp.where(valid, nll, 0.0)) / jnp.sum(valid)


def bce_with_logits(logits: jax.Array, target: jax.Array) -> jax.Array:
    """nn.BCEWithLogitsLoss (mean): max(x, 0) - x*t + log(1 + exp(-|x|))."""
    x = at_least_float32(logits)
    return jnp.mean(jnp.maximum(x, 0) - x * target + jnp.log1p(jnp.exp(-jnp.abs(x))))


VGG_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


def _vgg_features(vgg_variables, x):
    from tryon_jax.models.vgg import VGG19
    return VGG19().apply(vgg_variables, x)


def vgg_l1_per_slice(vgg_variables, x: jax.Array, y: jax.Array) -> list[jax.Array]:
    """mean|phi_i(x) - phi_i(y)| for the five slices; y is not differentiated."""
    fx = _vgg_features(vgg_variables, x)
    fy = _vgg_features(vgg_variables, jax.lax.stop_gradient(y))
    return [jnp.mean(jnp.abs(a - jax.lax.stop_gradient(b))) for a, b in zip(fx, fy)]


def vgg_loss(vgg_variables, x: jax.Array, y: jax.Array) -> jax.Array:
    """pix2pixHD VGGLoss: sum_i w_i * mean|phi_i(x) - phi_i(y)|, weights 1/32 .. 1, no ImageNet
    normalisation (quirk 24)."""
    return sum(w * term for w, term in zip(VGG_WEIGHTS, vgg_l1_per_slice(vgg_variables, x, y)))


def vgg_loss_warp(vgg_variables, x: jax.Array, y: jax.Array) -> jax.Array:
    """ACGPN's VGGLoss.warp: relu5_1 only, weight 1."""
    fx = _vgg_features(vgg_variables, x)[-1]
    fy = _vgg_features(vgg_variables, jax.lax.stop_gradient(y))[-1]
    return jnp.mean(jnp.abs(fx - jax.lax.stop_gradient(fy)))


def lsgan_loss(results, target_is_real: bool) -> jax.Array:
    """pix2pixHD GANLoss(use_lsgan=True): MSE of each scale's last output against 1 or 0,
    summed (not averaged) over the scales."""
    target = 1.0 if target_is_real else 0.0
    return sum(jnp.mean(jnp.square(scale[-1] - target)) for scale in results)


def bce_probabilities(p: jax.Array, target) -> jax.Array:
    """nn.BCELoss elementwise on probabilities, each log clamped at -100 as torch does."""
    log_p = jnp.maximum(jnp.log(p), -100.0)
    log_1mp = jnp.maximum(jnp.log1p(-p), -100.0)
    return -(target * log_p + (1 - target) * log_1mp)


def vanilla_gan_loss(results, target_is_real: bool) -> jax.Array:
    """GANLoss(use_lsgan=False): mean BCE of each scale's last (sigmoid) output, summed over scales."""
    target = 1.0 if target_is_real else 0.0
    return sum(jnp.mean(bce_probabilities(scale[-1], target)) for scale in results)


def feature_matching_loss(fake_results, real_results, n_layers: int = 3, weight: float = 10.0) -> jax.Array:
    """pix2pixHD loss_G_GAN_Feat: sum over scales i and intermediate features j (the final
    prediction excluded) of (1/num_D) * (4/(n_layers+1)) * weight * mean|fake - real|; the real
    features are not differentiated. ACGPN uses weight 5 ('0.5 x lambda_feat 10')."""
    num_d = len(fake_results)
    scale = (1.0 / num_d) * (4.0 / (n_layers + 1)) * weight
    total = 0.0
    for fake, real in zip(fake_results, real_results):
        for f, r in zip(fake[:-1], real[:-1]):
            total = total + scale * jnp.mean(jnp.abs(f - jax.lax.stop_gradient(r)))
    return total
