"""ACGPN's bounded STN: localisation CNN, TPS grid generator and the grid regularisers.

Mirrors STNNet / BoundedGridLocNet / CNN / TPSGridGen of the original code, so the Flax
parameter tree is stn/loc_net/cnn/{model_0, ..., fc1, fc2} like the torch state_dict.
"""
import functools
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tryon_jax.models import layers

GRID_SIZE = 5
GRID_RANGE = 0.9


def target_control_points() -> np.ndarray:
    """The 5x5 target grid, (25, 2) float32 in (x, y), x varying fastest (quirk 12)."""
    axis = np.arange(-GRID_RANGE, GRID_RANGE + 0.00001, 2.0 * GRID_RANGE / (GRID_SIZE - 1))
    yx = np.array(list(itertools.product(axis, axis)), dtype=np.float32)  # torch.Tensor(list)
    return np.stack([yx[:, 1], yx[:, 0]], axis=1)


def _partial_repr(points: np.ndarray, control: np.ndarray) -> np.ndarray:
    """U(d2) = 0.5 * d2 * log(d2) in float32, with 0 where d2 == 0 (0*log 0 is NaN in torch)."""
    diff = points[:, None, :] - control[None, :, :]
    sq = diff * diff
    dist = sq[:, :, 0] + sq[:, :, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rep = np.float32(0.5) * dist * np.log(dist)
    return np.where(np.isnan(rep), np.float32(0), rep).astype(np.float32)


@functools.lru_cache(maxsize=8)
def tps_buffers(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """TPSGridGen's float32 buffers: inverse_kernel (N+3, N+3) and target_coordinate_repr (HW, N+3)."""
    control = target_control_points()
    n = control.shape[0]
    kernel = np.zeros((n + 3, n + 3), np.float32)
    kernel[:n, :n] = _partial_repr(control, control)
    kernel[:n, -3] = 1
    kernel[-3, :n] = 1
    kernel[:n, -2:] = control
    kernel[-2:, :n] = control.T
    inverse = np.linalg.inv(kernel).astype(np.float32)
    yx = np.array(list(itertools.product(range(height), range(width))), dtype=np.float32)
    # Corner-aligned pixel coordinates, same float32 op order as the original.
    y = yx[:, 0:1] * np.float32(2) / np.float32(height - 1) - np.float32(1)
    x = yx[:, 1:2] * np.float32(2) / np.float32(width - 1) - np.float32(1)
    coords = np.concatenate([x, y], axis=1)
    rep = np.concatenate([_partial_repr(coords, control), np.ones((height * width, 1), np.float32), coords], 1)
    return inverse, rep


def tps_grid(source_points: jax.Array, height: int, width: int, inverse=None) -> jax.Array:
    """TPS sampling grid (B, H, W, 2) in (x, y) from (B, 25, 2) source control points."""
    computed_inverse, rep = tps_buffers(height, width)
    inverse = computed_inverse if inverse is None else inverse
    b = source_points.shape[0]
    y = jnp.concatenate([source_points, jnp.zeros((b, 3, 2), source_points.dtype)], axis=1)
    mapping = jnp.matmul(jnp.asarray(inverse), y, precision=jax.lax.Precision.HIGHEST)
    coords = jnp.matmul(jnp.asarray(rep), mapping, precision=jax.lax.Precision.HIGHEST)
    return coords.reshape(b, height, width, 2)


def _second_differences(grid: jax.Array) -> jax.Array:
    """|d_{i+1} - d_i| with d_i = (p_{i+1} - p_i)^2 along the last grid axis: (B, 5, 3, 2) -> (B, 15, 2)."""
    d = jnp.square(grid[:, :, 1:] - grid[:, :, :-1])
    sd = jnp.abs(d[:, :, 1:] - d[:, :, :-1])
    return sd.reshape(grid.shape[0], -1, 2)


def row_col_second_differences(coor: jax.Array) -> tuple[jax.Array, jax.Array]:
    """get_row / get_col of the original: (B, 15, 2) each (quirk 13)."""
    grid = coor.reshape(coor.shape[0], GRID_SIZE, GRID_SIZE, 2)  # [row(y), col(x), xy]
    return _second_differences(grid), _second_differences(grid.transpose(0, 2, 1, 3))


def _collinearity(grid: jax.Array) -> jax.Array:
    """|(y1-y0)(x1-x2) - (y1-y2)(x1-x0)| for consecutive triples along the last grid axis: (B, 15)."""
    p0, p1, p2 = grid[:, :, :-2], grid[:, :, 1:-1], grid[:, :, 2:]
    x0, y0, x1, y1, x2, y2 = p0[..., 0], p0[..., 1], p1[..., 0], p1[..., 1], p2[..., 0], p2[..., 1]
    g = jnp.abs((y1 - y0) * (x1 - x2) - (y1 - y2) * (x1 - x0))
    return g.reshape(grid.shape[0], -1)


def row_col_collinearity(coor: jax.Array) -> tuple[jax.Array, jax.Array]:
    """grad_row / grad_col of the training loc-net: (B, 15) each."""
    grid = coor.reshape(coor.shape[0], GRID_SIZE, GRID_SIZE, 2)
    return _collinearity(grid), _collinearity(grid.transpose(0, 2, 1, 3))


def grid_constraints(coor: jax.Array) -> dict[str, jax.Array]:
    """The STN regularisers, unscaled: rx, ry, cx, cy = mean(max(0.08, second diffs)) and
    rg, cg = max(0.02, mean(collinearity))."""
    row, col = row_col_second_differences(coor)
    grad_row, grad_col = row_col_collinearity(coor)
    floor = 0.08
    return {
        "stn_row_second_diff": row, "stn_col_second_diff": col,
        "rx_loss": jnp.mean(jnp.maximum(floor, row[..., 0])),
        "ry_loss": jnp.mean(jnp.maximum(floor, row[..., 1])),
        "cx_loss": jnp.mean(jnp.maximum(floor, col[..., 0])),
        "cy_loss": jnp.mean(jnp.maximum(floor, col[..., 1])),
        "rg_loss": jnp.maximum(0.02, jnp.mean(grad_row)),
        "cg_loss": jnp.maximum(0.02, jnp.mean(grad_col)),
    }


def _halvings(height: int) -> int:
    """How many times ``height`` halves down to 4."""
    return (height // 4).bit_length() - 1


class LocNetCNN(nn.Module):
    """BoundedGridLocNet.CNN: 5->8 (ReLU then IN, quirk 11), 5 x [k4 s2, IN, ReLU], 2 x [k3, IN,
    ReLU], MaxPool2d(2), C,H,W flatten, fc1, ReLU, dropout, fc2.

    At 256x192 the stride-2 convs bring the input to 4x3; other 4:3 resolutions get as many
    stride-2 convs as reach 4x3 (widths double from 8, capped at 256), so fc1 always sees
    256 x 2 x 1 features."""
    num_output: int = GRID_SIZE * GRID_SIZE * 2
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        x = layers.conv(8, 4, 2, 1, name="model_0", dtype=self.dtype)(x)
        x = layers.instance_norm(nn.relu(x))
        index, ngf = 3, 8
        for _ in range(_halvings(x.shape[1])):  # down to 4x3
            ngf = min(2 * ngf, 256)
            x = layers.conv(ngf, 4, 2, 1, name=f"model_{index}", dtype=self.dtype)(x)
            x = nn.relu(layers.instance_norm(x))
            index += 3
        for _ in range(2):
            x = layers.conv(256, 3, 1, 1, name=f"model_{index}", dtype=self.dtype)(x)
            x = nn.relu(layers.instance_norm(x))  # declared InstanceNorm2d(64): all channels normalised
            index += 3
        x = layers.max_pool2x2(x)
        flat = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)  # torch's C,H,W flatten
        self.sow("intermediates", "locnet_fc1_in", flat)
        h = nn.relu(nn.Dense(128, name="fc1", dtype=self.dtype)(flat))
        h = nn.Dropout(0.5, deterministic=deterministic)(h)
        return nn.Dense(self.num_output, name="fc2", dtype=self.dtype)(h)


class BoundedGridLocNet(nn.Module):
    """Control points tanh(CNN(x)) viewed as (B, 25, 2) (x, y) pairs, plus the grid regularisers."""
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        h, w = x.shape[1:3]
        if h < 64 or h & (h - 1) or 3 * h != 4 * w:
            raise ValueError(f"the STN localisation net needs 4:3 inputs with a power-of-two height >= 64 "
                             f"(256x192 in ACGPN), got {h}x{w}")
        fc2_out = layers.at_least_float32(LocNetCNN(name="cnn", dtype=self.dtype)(x, deterministic))
        coor = jnp.tanh(fc2_out).reshape(x.shape[0], -1, 2)
        return {"locnet_fc2_out": fc2_out, "source_control_points": coor, **grid_constraints(coor)}


class TPSGridGen(nn.Module):
    """Holds TPSGridGen's ``inverse_kernel`` buffer (taken from the checkpoint when it has one,
    as the original does) and maps control points to the sampling grid."""
    height: int = 256
    width: int = 192

    @nn.compact
    def __call__(self, source_points):
        inverse = self.variable("buffers", "inverse_kernel",
                                lambda: jnp.asarray(tps_buffers(self.height, self.width)[0]))
        return tps_grid(source_points, self.height, self.width, inverse.value)


class STN(nn.Module):
    """STNNet: warps the cloth, its mask and an extra picture with the TPS grid (canvas 0)."""
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, clothes, reference, mask, grid_pic, deterministic: bool = True):
        # Loc-net input order: mask, reference, input (quirk 11).
        out = BoundedGridLocNet(name="loc_net", dtype=self.dtype)(
            jnp.concatenate([mask, reference, clothes], axis=-1), deterministic)
        h, w = clothes.shape[1:3]
        grid = TPSGridGen(h, w, name="tps")(out["source_control_points"])
        out.update(
            tps_grid=grid,
            grid_sample_output_mask=layers.grid_sample(jnp.ones_like(mask), grid),
            warped=layers.grid_sample_canvas(clothes, grid),
            warped_mask=layers.grid_sample_canvas(mask, grid),
            warped_grid=layers.grid_sample_canvas(grid_pic, grid),
        )
        return out
