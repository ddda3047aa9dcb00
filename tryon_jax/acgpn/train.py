"""The ACGPN training loop over a device mesh: data, checkpoints with exact resume, metrics,
pictures and a quick evaluation (the step itself is acgpn.train_step).

The batch is sharded over the mesh axis 'data', parameters are replicated (or sharded,
``train.shard_params``), the old state is donated. Each process reads its slice of every
global batch; a run stopped at any point (even kill -9) resumes from its last checkpoint and
reaches the same parameters.
"""
import dataclasses
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from tryon_jax.acgpn import batches, train_step
from tryon_jax.acgpn.train_step import DISCRIMINATORS, GENERATORS, TrainState
from tryon_jax.core import files
from tryon_jax.core.mesh import global_batch, make_mesh, state_shardings
from tryon_jax.core.metrics_log import MetricsLog, say
from tryon_jax.models.spec import ModelSpec
from tryon_jax.weights import checkpoint, convert


@dataclasses.dataclass
class Run:
    """Everything a training run holds besides the state."""
    mesh: jax.sharding.Mesh
    step_fn: object
    constants: dict
    loader: object
    steps_per_epoch: int
    num_steps: int


def vgg_constants(config) -> dict:
    path = config.train.vgg19_weights
    if not path:
        logging.warning("config.train.vgg19_weights is empty: the VGG19 perceptual losses are OFF. Pass the "
                        "torchvision vgg19 .pth (e.g. vgg19-dcbb9e9d.pth) to train with them, as ACGPN does.")
        return {}
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config.train.vgg19_weights: {path} not found (torchvision vgg19 .pth, "
                                "or '' to train without the perceptual losses)")
    return {"VGG19": convert.vgg19_variables(convert.read_torch_checkpoint(path))}


def tfds_dir(config, workdir: str) -> str:
    return config.data.tfds_data_dir or os.path.join(workdir, "tfds")


def _loader(config, workdir: str):
    from tryon_jax.data import input_pipeline
    dc = config.data
    data_dir = tfds_dir(config, workdir)
    if jax.process_index() == 0:
        input_pipeline.ensure_dataset(dc.name, data_dir, dc.manual_dir)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices("tfds dataset ready")
    size = len(input_pipeline.data_source(dc.name, dc.split, data_dir))
    if size < config.batch_size:
        raise ValueError(f"{dc.name} {dc.split} has {size} examples, fewer than batch_size {config.batch_size}")
    loader = input_pipeline.create_loader(dc.name, dc.split, config.batch_size, data_dir=data_dir, shuffle=True,
                                          seed=config.seed, worker_count=dc.worker_count)
    return loader, size // config.batch_size


def _check(config):
    n = jax.device_count()
    if config.batch_size % n:
        raise ValueError(f"batch_size {config.batch_size} must be a multiple of the {n} devices")
    for name in ("checkpoint_every", "log_every", "picture_every"):
        if config.train[name] < 1:
            raise ValueError(f"train.{name} must be >= 1, got {config.train[name]}")
    train_step.check_param_dtype(config.train.param_dtype)
    train_step.compute_dtype(config.train.dtype)


def setup(config, workdir: str) -> tuple[Run, TrainState]:
    _check(config)
    spec = ModelSpec.from_dict(config.model)
    mesh = make_mesh()
    loader, steps_per_epoch = _loader(config, workdir)
    num_steps = config.train.num_steps or config.train.num_epochs * steps_per_epoch
    state = train_step.initial_state(config, spec)
    shardings = state_shardings(mesh, state, config.train.shard_params)
    state = jax.device_put(state, shardings)
    constants = jax.device_put(vgg_constants(config), NamedSharding(mesh, P()))
    fn = train_step.make_train_step(config, spec, steps_per_epoch, config.batch_size)
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


def preview_grid(pictures: dict) -> np.ndarray:
    """person | cloth | warped cloth | U-Net cloth (fake_c) | result, one row per example, enlarged
    (nearest) to at least 256 pixels high so small demo models can be looked at."""
    pictures = jax.device_get(pictures)
    rows = [[files.to_uint8(pictures[k][i]) for k in ("person", "cloth", "warped", "fake_c", "result")]
            for i in range(len(pictures["person"]))]
    scale = max(1, 256 // rows[0][0].shape[0])
    return files.grid(rows).repeat(scale, axis=0).repeat(scale, axis=1)


def train_and_evaluate(config, workdir: str) -> TrainState:
    """Trains (resuming from WORKDIR/checkpoints when there is one); returns the final state."""
    from tryon_jax.data import input_pipeline
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
        say(f"resumed from step {start} in {checkpoint.checkpoint_dir(workdir)}")
    log = MetricsLog(workdir, start)
    evaluator = make_evaluator(config, tfds_dir(config, workdir)) if config.eval_every else None
    say(f"training to step {run.num_steps} ({run.steps_per_epoch} steps per epoch, global batch "
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
            path = log.picture(done, "train", preview_grid(pictures))
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


def eval_pairs(config, train_data_dir: str) -> dict:
    """The raw inputs of the evaluator's paired pairs: the ACGPN folder's list (``eval.data_dir``,
    ``eval.paired_pairs``), or without a folder the first ``eval.num_pairs`` examples of the TFDS
    split ``eval.tfds_name``/``eval.split`` (in ``eval.tfds_data_dir``, else the training data's)."""
    from tryon_jax.data import samples
    ec = config.eval
    if ec.data_dir:
        pairs = samples.read_pairs(ec.paired_pairs)[: ec.num_pairs or None]
        return samples.stack([samples.load_raw(ec.data_dir, p, ec.split) for p in pairs], samples.RAW_KEYS)
    from tryon_jax.data import input_pipeline
    source = input_pipeline.data_source(ec.tfds_name, ec.split, ec.tfds_data_dir or train_data_dir)
    decode = input_pipeline.DecodeExample("paired")
    return samples.stack([decode.map(source[i]) for i in range(min(len(source), ec.num_pairs or len(source)))],
                         samples.RAW_KEYS)


def make_evaluator(config, train_data_dir: str):
    """Paired SSIM and L1 of the try-on (fixed pairs and noise) at the model's resolution, from
    the current generators: a quick signal during training (python -m evaluation gives the
    full protocol with IS and FID on saved checkpoints)."""
    from tryon_jax.acgpn import inference
    from tryon_jax.data import loader_ops
    from tryon_jax.metrics import ssim
    ec = config.eval
    spec = ModelSpec.from_dict(config.model)
    raw = eval_pairs(config, train_data_dir)
    n = len(raw["image"])
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(ec.seed), i))(jnp.arange(n))

    @jax.jit
    def scores(generators, raw, keys):
        batch = batches.resize(loader_ops.prepare(raw), spec.height, spec.width)
        fake = inference.tryon_graph(generators, batch, keys, spec=spec)["fake_image"]
        q = lambda x: jnp.round((x + 1) * 127.5).clip(0, 255) / 255  # noqa: E731  (as saved PNGs)
        return {"eval/ssim": jnp.mean(ssim.ssim(q(fake), q(batch["image"]))),
                "eval/l1": jnp.mean(jnp.abs(fake - batch["image"]))}

    return lambda state: {k: float(v) for k, v in jax.device_get(scores(state.generators(), raw, keys)).items()}
