"""ACGPN's training step: the state of the eight networks, their initialisation, the schedule
and one pure step (state, raw batch, constants) -> (state, metrics, preview images).

The step runs ACGPN_train's forward on the global batch (acgpn.objective), takes one backward
pass of loss_G + loss_D (the discriminators are seen through stop_gradient in loss_G, so each
network gets the gradient of its own loss, as with the original's two backward calls) and
applies Adam (lr 2e-4, betas 0.5/0.999, linear decay after ``niter`` epochs) to every network
the current stage trains. Randomness comes from fold_in(seed, step) and then fold_in(.,
example index), so a global batch gives the same step on any number of devices or processes.
"""
import functools
import os

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from tryon_jax.acgpn import batches, objective
from tryon_jax.core.mesh import example_keys
from tryon_jax.models import networks, tps
from tryon_jax.models.spec import ModelSpec
from tryon_jax.weights import convert

GENERATORS = networks.GENERATORS  # G1, G2, U, G
DISCRIMINATORS = tuple(networks.DISCRIMINATORS)  # D1, D2, D3, D
NETWORKS = GENERATORS + DISCRIMINATORS
LOGGED = ("loss_G", "loss_D", "L1_loss", "CE_loss")
LOGGED_TOTALS = ("G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake")
# How well the warper fits the worn garment: the warped cloth and its mask against the person's.
LOGGED_TERMS = {"warp/L1": "L1(warped, real*cm)_raw", "warp/L1_mask": "L1(warped_mask, cm)_raw"}


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: dict  # network -> trainable params
    buffers: dict  # network -> other variable collections (U's TPS kernel)
    opt_state: dict  # network -> Adam moments

    def generators(self) -> dict:
        """The Flax variables of G1, G2, U, G (what try-on, evaluation and export use)."""
        return {n: {"params": self.params[n], **self.buffers.get(n, {})} for n in GENERATORS}


# --- initialisation -------------------------------------------------------------------------

def init_variables(seed: int, spec: ModelSpec) -> dict:
    """Fresh variables of the eight networks, initialised as ACGPN does: conv weights
    N(0, 0.02) (pix2pixHD's weights_init), Dense weights U(+-1/sqrt(fan_in)) (torch's
    default), biases 0, the loc-net's fc2 zero with bias arctanh(target control points) so
    training starts from the identity grid. Shapes come from jax.eval_shape, values from
    numpy (no compilation)."""
    out = {}
    for i, name in enumerate(NETWORKS):
        shapes = networks.variable_shapes(name, spec)
        rng = np.random.default_rng([seed, i])
        out[name] = {"params": jax.tree_util.tree_map_with_path(lambda p, x: _init_leaf(p, x, rng),
                                                                flax.core.unfreeze(shapes["params"]))}
    out["U"]["buffers"] = {"stn": {"tps": {"inverse_kernel": tps.tps_buffers(spec.height, spec.width)[0]}}}
    fc2 = out["U"]["params"]["stn"]["loc_net"]["cnn"]["fc2"]
    fc2["kernel"] = np.zeros_like(fc2["kernel"])
    fc2["bias"] = np.arctanh(tps.target_control_points()).reshape(-1).astype(np.float32)
    return out


def _init_leaf(path, shape, rng) -> np.ndarray:
    name = str(path[-1].key)
    if name == "kernel" and len(shape.shape) == 4:
        return rng.normal(0.0, 0.02, shape.shape).astype(np.float32)
    if name == "kernel" and len(shape.shape) == 2:
        bound = 1.0 / np.sqrt(shape.shape[0])
        return rng.uniform(-bound, bound, shape.shape).astype(np.float32)
    if name == "bias":
        return np.zeros(shape.shape, np.float32)
    raise ValueError(f"no initialiser for parameter {'/'.join(str(k.key) for k in path)} {shape.shape}")


def split_variables(variables: dict) -> tuple[dict, dict]:
    params = {n: variables[n]["params"] for n in NETWORKS}
    buffers = {n: {c: v for c, v in variables[n].items() if c != "params"} for n in NETWORKS}
    return params, {n: b for n, b in buffers.items() if b}


def initial_state(config, spec: ModelSpec) -> TrainState:
    variables = init_variables(config.seed, spec)
    if config.init.acgpn_checkpoints:
        if not spec.released_shapes:
            raise ValueError("config.init.acgpn_checkpoints needs the released shapes (config.model at its defaults; "
                             "any garment)")
        names = tuple(n for n in NETWORKS if n in GENERATORS or os.path.isfile(
            os.path.join(config.init.acgpn_checkpoints, f"latest_net_{n}.pth")))
        loaded = convert.load_acgpn_checkpoints(config.init.acgpn_checkpoints, names)
        logging.info("initialised %s from %s", ", ".join(loaded), config.init.acgpn_checkpoints)
        variables.update(loaded)
    dtype = np.dtype(config.train.param_dtype)
    variables = jax.tree.map(lambda x: np.asarray(x, dtype), variables)
    params, buffers = split_variables(variables)
    tx = _adam(config.train)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, buffers=buffers,
                      opt_state={n: tx.init(params[n]) for n in NETWORKS})


# --- schedule ---------------------------------------------------------------------------------

def parse_stages(text: str) -> list[tuple[int, frozenset]]:
    """'0:G1,D1; 5:G1,G2,D1,D2; 10:all' -> [(start_epoch, networks)], sorted, starting at 0."""
    stages = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        start, sep, names = part.partition(":")
        if not sep or not start.strip().isdigit():
            raise ValueError(f"train.stages: {part!r} is not 'start_epoch:NET,NET,...'")
        nets = frozenset(NETWORKS) if names.strip() == "all" else frozenset(n.strip() for n in names.split(","))
        unknown = nets - set(NETWORKS)
        if unknown or not nets:
            raise ValueError(f"train.stages: unknown networks {sorted(unknown)} in {part!r} (known: {NETWORKS})")
        stages.append((int(start), nets))
    stages.sort(key=lambda s: s[0])
    if not stages or stages[0][0] != 0:
        raise ValueError(f"train.stages must start at epoch 0, got {text!r}")
    return stages


def stage_table(stages, steps_per_epoch: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.array([s * steps_per_epoch for s, _ in stages], np.int32)
    active = np.array([[n in nets for n in NETWORKS] for _, nets in stages], bool)
    return starts, active


def learning_rate(step, tc, steps_per_epoch: int):
    """Constant for ``niter`` epochs, then minus lr/niter_decay after each further epoch
    (pix2pixHD's update_learning_rate), never below 0."""
    epoch = step // steps_per_epoch
    decayed = jnp.maximum(epoch - tc.niter, 0) / max(tc.niter_decay, 1)
    return tc.lr * jnp.clip(1.0 - decayed, 0.0, 1.0)


def _adam(tc):
    return optax.scale_by_adam(b1=tc.beta1, b2=tc.beta2, eps=tc.eps)


# --- the step ---------------------------------------------------------------------------------

def make_train_step(config, spec: ModelSpec, steps_per_epoch: int, global_batch: int, preview: int = 4):
    """The pure step (state, raw batch, constants) -> (state, metrics, preview images)."""
    tc = config.train
    tx = _adam(tc)
    starts, active_table = stage_table(parse_stages(tc.stages), steps_per_epoch)
    base_key = jax.random.key(config.seed)

    def step_fn(state: TrainState, raw: dict, constants: dict):
        key = jax.random.fold_in(base_key, state.step)
        data_key, dropout_key = jax.random.split(key)
        batch, noise = batches.train_batch(raw, example_keys(data_key, global_batch), spec,
                                              holes=tc.inpainting_holes, dtype=tc.param_dtype)

        def loss_fn(params):
            variables = {n: {"params": params[n], **state.buffers.get(n, {})} for n in NETWORKS}
            variables.update(constants)
            out = objective.forward(variables, batch, noise, deterministic=not tc.dropout,
                                      dropout_key=dropout_key, spec=spec, corrected=tc.corrected_losses,
                                      dtype=compute_dtype(tc.dtype))
            return out["loss_G"] + out["loss_D"], out

        grads, out = jax.grad(loss_fn, has_aux=True)(state.params)
        lr = learning_rate(state.step, tc, steps_per_epoch)
        active = jnp.asarray(active_table)[jnp.sum(state.step >= starts) - 1]
        params, opt_state = {}, {}
        for i, n in enumerate(NETWORKS):
            updates, opt = tx.update(grads[n], state.opt_state[n], state.params[n])
            new = jax.tree.map(lambda p, u: p - lr * (u + tc.weight_decay * p), state.params[n], updates)
            keep = functools.partial(jnp.where, active[i])
            params[n] = jax.tree.map(keep, new, state.params[n])
            opt_state[n] = jax.tree.map(keep, opt, state.opt_state[n])
        metrics = {k: out[k] for k in LOGGED}
        metrics.update({name: out[term] for name, term in LOGGED_TERMS.items()})
        metrics.update({k: out["totals"][k] for k in LOGGED_TOTALS})
        metrics.update({f"grad_norm/{n}": optax.tree.norm(grads[n]) for n in NETWORKS})
        metrics["lr"] = lr
        pictures = {"person": batch["image"], "cloth": batch["color"], "warped": out["warped"],
                    "fake_c": out["fake_c"], "result": out["fake_image_replace"]}
        pictures = {k: v[:preview] for k, v in pictures.items()}
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics, pictures

    return step_fn


def compute_dtype(name: str):
    """``train.dtype``: 'float32' computes in the parameters' dtype; 'bfloat16' runs the
    networks in bfloat16 (parameters, Adam's moments, norms and losses stay float32)."""
    if name not in ("float32", "bfloat16"):
        raise ValueError(f"train.dtype must be float32 or bfloat16, got {name!r}")
    return None if name == "float32" else jnp.bfloat16


def check_param_dtype(name: str) -> None:
    """float32 (training) or float64 (equivalence checks, needs JAX_ENABLE_X64=1)."""
    if name not in ("float32", "float64"):
        raise ValueError(f"train.param_dtype must be float32 or float64, got {name!r}")
    if name == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("train.param_dtype=float64 needs 64-bit JAX: set JAX_ENABLE_X64=1")
