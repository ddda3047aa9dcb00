"""Training batches on device: the ACGPN_train loader's tensors at the model's resolution.

Device-side work per batch: the inference loader's ops (loader_ops.prepare), label washing
(the garment region's ``washed``: for tops 7 'noise' -> 4 clothes, as ACGPN_train's loader
does), a resize to the model resolution when it is not 256x192, the random inpainting masks
that open holes over the skin (the arms for tops), and the three noise maps. Every random
draw of example i comes from fold_in(step_key, i) with i its index in the global batch, so a
batch gives the same tensors on any number of devices.
"""
import jax
import jax.numpy as jnp

from tryon_jax.acgpn import inference
from tryon_jax.data import loader_ops
from tryon_jax.models.spec import ModelSpec


def resize(batch: dict, height: int, width: int) -> dict:
    """The loader tensors at another resolution: integer-factor box filter down (nearest for
    the label), bilinear up (nearest for the label)."""
    h, w = next(iter(batch.values())).shape[1:3]
    if (h, w) == (height, width):
        return batch
    out = {}
    for key, x in batch.items():
        b, _, _, c = x.shape
        if height < h:
            if h % height or w % width or h // height != w // width:
                raise ValueError(f"cannot shrink {h}x{w} to {height}x{width} by an integer factor")
            f = h // height
            if key == "label":
                out[key] = x[:, f // 2::f, f // 2::f]
            else:
                out[key] = x.reshape(b, height, f, width, f, c).mean(axis=(2, 4))
        else:
            method = "nearest" if key == "label" else "linear"
            out[key] = jax.image.resize(x, (b, height, width, c), method=method)
    return out


def random_holes(key: jax.Array, height: int, width: int, max_boxes: int = 3) -> jax.Array:
    """An inpainting mask (H, W, 1) in {0, 1}: 1..max_boxes random rectangles of 1/8..1/2 of
    each side (the original's train_mask/ images are not published; the golden uses rectangles)."""
    k_count, k_box = jax.random.split(key)
    count = jax.random.randint(k_count, (), 1, max_boxes + 1)
    u = jax.random.uniform(k_box, (max_boxes, 4))
    bh = (u[:, 0] * 3 / 8 + 1 / 8) * height
    bw = (u[:, 1] * 3 / 8 + 1 / 8) * width
    y0, x0 = u[:, 2] * (height - bh), u[:, 3] * (width - bw)
    yy = jnp.arange(height)[None, :, None] + 0.5
    xx = jnp.arange(width)[None, None, :] + 0.5
    inside = ((yy >= y0[:, None, None]) & (yy < (y0 + bh)[:, None, None])
              & (xx >= x0[:, None, None]) & (xx < (x0 + bw)[:, None, None]))
    inside = inside & (jnp.arange(max_boxes) < count)[:, None, None]
    return jnp.any(inside, axis=0)[..., None].astype(jnp.float32)


def train_batch(raw: dict, keys: jax.Array, spec: ModelSpec, holes: bool = True,
                dtype="float32") -> tuple[dict, dict]:
    """(loader tensors with the inpainting ``mask``, noise maps) for a raw decoded batch; the
    tensors in ``dtype`` (the parameters' float type)."""
    prepared = {k: v.astype(dtype) for k, v in loader_ops.prepare(raw).items()}
    batch = resize(prepared, spec.height, spec.width)
    region = spec.region
    for label in region.washed:
        batch["label"] = jnp.where(batch["label"] == label, float(region.label), batch["label"])
    split = jax.vmap(jax.random.split)(keys)
    hole_keys, noise_keys = split[:, 0], split[:, 1]
    if holes:
        batch["mask"] = jax.vmap(lambda k: random_holes(k, spec.height, spec.width))(hole_keys)
    else:
        batch["mask"] = jnp.zeros_like(batch["edge"])
    noise = inference.draw_noise(noise_keys, keys.shape[0], spec.height, spec.width)
    return batch, noise
