"""ACGPN / pix2pixHD loss terms (the ones the inference graph reports live here too)."""
import jax
import jax.numpy as jnp

IGNORE_INDEX = 250


def cross_entropy2d(logits: jax.Array, target: jax.Array) -> jax.Array:
    """F.cross_entropy over (B, H, W, C) scores and (B, H, W) integer targets, mean over the
    pixels whose target is not 250 (ACGPN's cross_entropy2d, ignore_index=250)."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    valid = target != IGNORE_INDEX
    safe = jnp.where(valid, target, 0).astype(jnp.int32)
    nll = -jnp.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
    return jnp.sum(jnp.where(valid, nll, 0.0)) / jnp.sum(valid)


def bce_with_logits(logits: jax.Array, target: jax.Array) -> jax.Array:
    """nn.BCEWithLogitsLoss (mean): max(x, 0) - x*t + log(1 + exp(-|x|))."""
    x = logits.astype(jnp.float32)
    return jnp.mean(jnp.maximum(x, 0) - x * target + jnp.log1p(jnp.exp(-jnp.abs(x))))


VGG_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


def _vgg_features(vgg_variables, x):
    from tryon_jax.models.vgg import VGG19
    return VGG19().apply(vgg_variables, x)


def vgg_loss(vgg_variables, x: jax.Array, y: jax.Array) -> jax.Array:
    """pix2pixHD VGGLoss: sum_i w_i * mean|phi_i(x) - phi_i(y)|, y not differentiated, no
    ImageNet normalisation (quirk 24)."""
    fx = _vgg_features(vgg_variables, x)
    fy = _vgg_features(vgg_variables, jax.lax.stop_gradient(y))
    return sum(w * jnp.mean(jnp.abs(a - jax.lax.stop_gradient(b))) for w, a, b in zip(VGG_WEIGHTS, fx, fy))


def vgg_loss_warp(vgg_variables, x: jax.Array, y: jax.Array) -> jax.Array:
    """ACGPN's VGGLoss.warp: relu5_1 only, weight 1."""
    fx = _vgg_features(vgg_variables, x)[-1]
    fy = _vgg_features(vgg_variables, jax.lax.stop_gradient(y))[-1]
    return jnp.mean(jnp.abs(fx - jax.lax.stop_gradient(fy)))
