"""Training ACGPN (G1, G2, U, G against D1, D2, D3, D) over a device mesh.

One jitted step runs ACGPN_train's forward on the global batch, takes one backward pass of
loss_G + loss_D (the discriminators are seen through stop_gradient in loss_G, so each network
gets the gradient of its own loss, as with the original's two backward calls) and applies
Adam (lr 2e-4, betas 0.5/0.999, linear decay after ``niter`` epochs) to every network the
current stage trains. The batch is sharded over the mesh axis 'data', parameters are
replicated (or sharded, ``train.shard_params``), the old state is donated. Randomness comes
from fold_in(seed, step) and then fold_in(., example index), so a global batch gives the
same step on any number of devices or processes.
"""
import dataclasses
import functools
import math
import os
import sys
import time

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from tqdm import tqdm

from tryon_jax import acgpn_train, checkpoint, convert, io, train_data
from tryon_jax.metrics_log import MetricsLog
from tryon_jax.models import tps
from tryon_jax.models.spec import ModelSpec

GENERATORS = convert.GENERATORS  # G1, G2, U, G
DISCRIMINATORS = ("D1", "D2", "D3", "D")
NETWORKS = GENERATORS + DISCRIMINATORS
_INPUT_CHANNELS = {"G1": 37, "G2": 37, "G": 24, **convert.DISCRIMINATORS}
LOGGED = ("loss_G", "loss_D", "L1_loss", "CE_loss")
LOGGED_TOTALS = ("G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake")


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
        module = convert.acgpn_module(name, spec=spec)
        if name == "U":
            h, w = spec.height, spec.width
            args = (jnp.zeros((1, h, w, 3)), jnp.zeros((1, h, w, 1)), jnp.zeros((1, h, w, 1)), jnp.zeros((1, h, w, 3)))
        else:
            size = 64 if name == "G" and spec.image_generator == "local_enhancer" else 32
            args = (jnp.zeros((1, size, size, _INPUT_CHANNELS[name])),)
        shapes = jax.eval_shape(module.init, jax.random.key(0), *args)
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
        if not spec.faithful:
            raise ValueError("config.init.acgpn_checkpoints needs the faithful model (config.model at its defaults)")
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
        batch, noise = train_data.train_batch(raw, train_data.example_keys(data_key, global_batch), spec,
                                              holes=tc.inpainting_holes, dtype=tc.param_dtype)

        def loss_fn(params):
            variables = {n: {"params": params[n], **state.buffers.get(n, {})} for n in NETWORKS}
            variables.update(constants)
            out = acgpn_train.forward(variables, batch, noise, deterministic=not tc.dropout,
                                      dropout_key=dropout_key, spec=spec, corrected=tc.corrected_losses)
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
        metrics.update({k: out["totals"][k] for k in LOGGED_TOTALS})
        metrics.update({f"grad_norm/{n}": optax.tree.norm(grads[n]) for n in NETWORKS})
        metrics["lr"] = lr
        pictures = {"person": batch["image"], "cloth": batch["color"], "warped": out["warped"],
                    "fake_c": out["fake_c"], "result": out["fake_image_replace"]}
        pictures = {k: v[:preview] for k, v in pictures.items()}
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics, pictures

    return step_fn


# --- shardings ------------------------------------------------------------------------------

def make_mesh() -> Mesh:
    return Mesh(np.array(jax.devices()), ("data",))


def param_sharding(mesh: Mesh, x, shard: bool) -> NamedSharding:
    """Replicated, or (``shard``) split along the last axis that divides by the mesh size."""
    if shard and hasattr(x, "shape"):
        for axis in reversed(range(len(x.shape))):
            if x.shape[axis] % mesh.size == 0 and x.shape[axis] >= mesh.size:
                spec = [None] * len(x.shape)
                spec[axis] = "data"
                return NamedSharding(mesh, P(*spec))
    return NamedSharding(mesh, P())


def state_shardings(mesh: Mesh, state, shard: bool):
    return jax.tree.map(lambda x: param_sharding(mesh, x, shard), state)


def global_batch(local: dict, mesh: Mesh) -> dict:
    """This process's share of the batch -> global arrays sharded over 'data'."""
    sharding = NamedSharding(mesh, P("data"))
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local.items()}


# --- the loop ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    """Everything a training run holds besides the state."""
    mesh: Mesh
    step_fn: object
    constants: dict
    loader: object
    steps_per_epoch: int
    num_steps: int


def _vgg(config) -> dict:
    path = config.train.vgg19_weights
    if not path:
        logging.warning("config.train.vgg19_weights is empty: the VGG19 perceptual losses are OFF. Pass the "
                        "torchvision vgg19 .pth (e.g. vgg19-dcbb9e9d.pth) to train with them, as ACGPN does.")
        return {}
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config.train.vgg19_weights: {path} not found (torchvision vgg19 .pth, "
                                "or '' to train without the perceptual losses)")
    return {"VGG19": convert.vgg19_variables(convert.read_torch_checkpoint(path))}


def _loader(config, workdir: str):
    from tryon_jax import input_pipeline
    dc = config.data
    data_dir = dc.tfds_data_dir or os.path.join(workdir, "tfds")
    if jax.process_index() == 0:
        train_data.ensure_dataset(dc.name, data_dir, dc.manual_dir)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices("tfds dataset ready")
    size = len(input_pipeline.data_source(dc.name, dc.split, data_dir))
    if size < config.batch_size:
        raise ValueError(f"{dc.name} {dc.split} has {size} examples, fewer than batch_size {config.batch_size}")
    loader = input_pipeline.create_loader(dc.name, dc.split, config.batch_size, data_dir=data_dir, shuffle=True,
                                          seed=config.seed, worker_count=dc.worker_count)
    return loader, size // config.batch_size


def _say(message: str) -> None:
    logging.info(message)
    if jax.process_index() == 0:
        tqdm.write(message, file=sys.stderr)


def _check(config):
    n = jax.device_count()
    if config.batch_size % n:
        raise ValueError(f"batch_size {config.batch_size} must be a multiple of the {n} devices")
    for name in ("checkpoint_every", "log_every", "picture_every"):
        if config.train[name] < 1:
            raise ValueError(f"train.{name} must be >= 1, got {config.train[name]}")
    check_param_dtype(config.train.param_dtype)


def check_param_dtype(name: str) -> None:
    """float32 (training) or float64 (equivalence checks, needs JAX_ENABLE_X64=1)."""
    if name not in ("float32", "float64"):
        raise ValueError(f"train.param_dtype must be float32 or float64, got {name!r}")
    if name == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("train.param_dtype=float64 needs 64-bit JAX: set JAX_ENABLE_X64=1")


def setup(config, workdir: str) -> tuple[Run, TrainState]:
    _check(config)
    spec = ModelSpec.from_dict(config.model)
    mesh = make_mesh()
    loader, steps_per_epoch = _loader(config, workdir)
    num_steps = config.train.num_steps or config.train.num_epochs * steps_per_epoch
    state = initial_state(config, spec)
    shardings = state_shardings(mesh, state, config.train.shard_params)
    state = jax.device_put(state, shardings)
    constants = jax.device_put(_vgg(config), NamedSharding(mesh, P()))
    fn = make_train_step(config, spec, steps_per_epoch, config.batch_size)
    batch_sh = NamedSharding(mesh, P("data"))
    repl = NamedSharding(mesh, P())
    step_fn = jax.jit(fn, in_shardings=(shardings, batch_sh, repl), out_shardings=(shardings, repl, repl),
                      donate_argnums=(0,))
    checkpoint.write_spec(workdir, spec)
    return Run(mesh, step_fn, constants, loader, steps_per_epoch, num_steps), state


def _state_items(state: TrainState) -> tuple[dict, dict]:
    return state.generators(), {"step": state.step, "discriminators": {n: state.params[n] for n in DISCRIMINATORS},
                                "opt_state": state.opt_state}


def _from_items(state: TrainState, generators: dict, rest: dict) -> TrainState:
    params = {**{n: generators[n]["params"] for n in GENERATORS}, **rest["discriminators"]}
    buffers = {n: {c: v for c, v in generators[n].items() if c != "params"} for n in GENERATORS}
    return state.replace(step=rest["step"], params=params, buffers={n: b for n, b in buffers.items() if b},
                         opt_state=rest["opt_state"])


def _preview_grid(pictures: dict) -> np.ndarray:
    """person | cloth | warped cloth | U-Net cloth (fake_c) | result, one row per example, enlarged
    (nearest) to at least 256 pixels high so small demo models can be looked at."""
    pictures = jax.device_get(pictures)
    rows = [[io.to_uint8(pictures[k][i]) for k in ("person", "cloth", "warped", "fake_c", "result")]
            for i in range(len(pictures["person"]))]
    scale = max(1, 256 // rows[0][0].shape[0])
    return io.grid(rows).repeat(scale, axis=0).repeat(scale, axis=1)


def train_and_evaluate(config, workdir: str) -> TrainState:
    """Trains (resuming from WORKDIR/checkpoints when there is one); returns the final state."""
    from tryon_jax import input_pipeline
    os.makedirs(workdir, exist_ok=True)
    run, state = setup(config, workdir)
    tc = config.train
    iterator = iter(run.loader)
    mngr = checkpoint.manager(workdir, tc.keep_checkpoints or None, async_save=tc.async_checkpoints)
    start = mngr.latest_step() or 0
    if start:
        gens, rest = _state_items(state)
        gens, rest = checkpoint.restore_train(mngr, start, gens, rest, iterator)
        state = _from_items(state, gens, rest)
        _say(f"resumed from step {start} in {checkpoint.checkpoint_dir(workdir)}")
    log = MetricsLog(workdir, start)
    evaluator = make_evaluator(config, run) if config.eval_every else None
    _say(f"training to step {run.num_steps} ({run.steps_per_epoch} steps per epoch, global batch "
         f"{config.batch_size}) on {jax.device_count()} {jax.devices()[0].platform} devices in "
         f"{jax.process_count()} processes; first step compiles")
    bar = tqdm(total=run.num_steps, initial=start, desc="train", unit="step", disable=jax.process_index() != 0)
    t0, n0 = time.perf_counter(), start
    for step in range(start, run.num_steps):
        raw = next(iterator)
        state, metrics, pictures = run.step_fn(state, global_batch(input_pipeline.arrays(raw), run.mesh),
                                               run.constants)
        done = step + 1
        if done % tc.log_every == 0 or done == run.num_steps:
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            bad = [k for k, v in metrics.items() if not math.isfinite(v)]
            if bad:
                raise FloatingPointError(f"step {done}: non-finite {bad} (lower train.lr or check the data)")
            rate = (done - n0) / (time.perf_counter() - t0)
            metrics["steps_per_second"] = rate
            metrics["examples_per_second"] = rate * config.batch_size
            log.scalars(done, metrics)
            bar.set_postfix(loss_G=f"{metrics['loss_G']:.3f}", loss_D=f"{metrics['loss_D']:.3f}",
                            step_s=f"{rate:.2f}")
            t0, n0 = time.perf_counter(), done
        if done % tc.picture_every == 0 or done == run.num_steps:
            path = log.picture(done, "train", _preview_grid(pictures))
            if path:
                bar.write(f"step {done}: {path} (person | cloth | warped | U-Net cloth | result)")
        if evaluator and (done % config.eval_every == 0 or done == run.num_steps):
            log.scalars(done, evaluator(state))
        if done % tc.checkpoint_every == 0 or done == run.num_steps:
            gens, rest = _state_items(state)
            checkpoint.save_train(mngr, done, gens, rest, iterator)
        bar.update(1)
    bar.close()
    mngr.wait_until_finished()
    mngr.close()
    log.close()
    return state


def make_evaluator(config, run: Run):
    """Paired SSIM and L1 of the try-on (fixed pairs and noise) at the model's resolution, from
    the current generators: a quick signal during training (python -m evaluation gives the
    full protocol with IS and FID on saved checkpoints)."""
    from evaluation import ssim
    from tryon_jax import data, loader_ops, pipeline
    ec = config.eval
    spec = ModelSpec.from_dict(config.model)
    pairs = data.read_pairs(ec.paired_pairs)[: ec.num_pairs or None]
    raw = data.stack([data.load_raw(ec.data_dir, p, ec.split) for p in pairs], data.RAW_KEYS)
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(ec.seed), i))(jnp.arange(len(pairs)))

    @jax.jit
    def scores(generators, raw, keys):
        batch = train_data.resize(loader_ops.prepare(raw), spec.height, spec.width)
        fake = pipeline.tryon_graph(generators, batch, keys, spec=spec)["fake_image"]
        q = lambda x: jnp.round((x + 1) * 127.5).clip(0, 255) / 255  # noqa: E731  (as saved PNGs)
        return {"eval/ssim": jnp.mean(ssim.ssim(q(fake), q(batch["image"]))),
                "eval/l1": jnp.mean(jnp.abs(fake - batch["image"]))}

    return lambda state: {k: float(v) for k, v in jax.device_get(scores(state.generators(), raw, keys)).items()}
