"""Training of the human parser (models/parser.py) on VITON: one jitted step over the device
mesh (data parallel), augmentation on device, orbax checkpoints with resume, metrics and
pictures like the try-on training, and the fp16 weights file that person/parser.py loads.

Losses: class-weighted cross-entropy (weights (median frequency / frequency)^power, clipped,
from the training labels) + soft Dice over the classes (both aim at the rare classes: dress,
legs, shoes) + MSE on OpenPose-18 Gaussian heatmaps at 1/4 resolution.
"""
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from tryon_jax.core import files
from tryon_jax.core.mesh import example_keys, global_batch, make_mesh
from tryon_jax.core.metrics_log import MetricsLog, say
from tryon_jax.metrics import parsing
from tryon_jax.models.parser import HEATMAP_STRIDE, NUM_LABELS, Parser
from tryon_jax.models.parser import predict as predict_labels
from tryon_jax.person.parser import colour_labels, keypoints_from_heatmaps
from tryon_jax.person.training import parser_augment
from tryon_jax.weights import checkpoint


@struct.dataclass
class ParserState:
    step: jax.Array
    params: dict
    opt_state: optax.OptState


def heatmap_targets(keypoints, height: int, width: int, sigma: float):
    """(B, H/4, W/4, 18) Gaussians at the keypoints present (pixel coordinates of the full frame)."""
    hh, ww = height // HEATMAP_STRIDE, width // HEATMAP_STRIDE
    y = (jnp.arange(hh) + 0.5) * HEATMAP_STRIDE - 0.5
    x = (jnp.arange(ww) + 0.5) * HEATMAP_STRIDE - 0.5
    kx, ky, present = keypoints[..., 0], keypoints[..., 1], keypoints[..., 2] > 0
    d2 = ((y[None, :, None, None] - ky[:, None, None, :]) ** 2 + (x[None, None, :, None] - kx[:, None, None, :]) ** 2)
    s = sigma * HEATMAP_STRIDE
    return jnp.exp(-d2 / (2 * s * s)) * present[:, None, None, :]


def losses(outputs, label, keypoints, class_weights, pc):
    logits = outputs["label_logits"]
    onehot = jax.nn.one_hot(label, NUM_LABELS)
    w = class_weights[label]
    ce = jnp.sum(w * optax.softmax_cross_entropy(logits, onehot)) / jnp.sum(w)
    prob = jax.nn.softmax(logits)
    inter = jnp.sum(prob * onehot, axis=(0, 1, 2))
    sizes = jnp.sum(prob, axis=(0, 1, 2)) + jnp.sum(onehot, axis=(0, 1, 2))
    present = jnp.sum(onehot, axis=(0, 1, 2)) > 0
    dice = 1 - jnp.sum(jnp.where(present, 2 * inter / (sizes + 1.0), 0)) / jnp.maximum(jnp.sum(present), 1)
    h, w_ = label.shape[1:3]
    target = heatmap_targets(keypoints, h, w_, pc.heatmap_sigma)
    pose = jnp.mean((outputs["heatmaps"] - target) ** 2)
    total = ce + pc.dice_weight * dice + pc.heatmap_weight * pose
    return total, {"loss": total, "ce": ce, "dice": dice, "heatmap_mse": pose}


def make_step(config, model: Parser, schedule):
    pc = config.parser
    tx = optax.chain(optax.clip_by_global_norm(pc.clip_norm), optax.adamw(schedule, weight_decay=pc.weight_decay))

    def step_fn(state: ParserState, raw: dict, class_weights):
        key = jax.random.fold_in(jax.random.key(config.seed), state.step)
        keys = example_keys(key, raw["image"].shape[0])
        image = raw["image"].astype(jnp.float32) / 255
        source = jnp.roll(raw["color"].astype(jnp.float32) / 255, 1, axis=0)  # another example's cloth
        image, label, keypoints = jax.vmap(parser_augment.augment, in_axes=(0, 0, 0, 0, 0, None, None))(
            keys, image, raw["label"][..., 0].astype(jnp.int32), raw["pose_keypoints"], source, pc.p_clutter,
            pc.p_geometry)

        def loss_fn(params):
            outputs = model.apply({"params": params}, image * 2 - 1)
            total, metrics = losses(outputs, label, keypoints, class_weights, pc)
            return total, (metrics, jnp.argmax(outputs["label_logits"][:4], -1))

        (_, (metrics, pred)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {**metrics, "grad_norm": optax.tree.norm(grads), "lr": schedule(state.step)}
        preview = {"image": image[:4], "label": label[:4], "pred": pred}
        return ParserState(state.step + 1, params, opt_state), metrics, preview

    return step_fn, tx


def class_weights(source, count: int, power: float, clip: tuple[float, float]) -> np.ndarray:
    """(median frequency / frequency) ** power over the labels of the first ``count`` examples
    (classes never seen get the largest weight), clipped to ``clip``."""
    counts = np.zeros(NUM_LABELS, np.int64)
    for i in range(min(count, len(source))):
        label = source[i]["label"]
        if isinstance(label, bytes):
            from tryon_jax.data.input_pipeline import _decode
            label = _decode(label, "L", "label")
        label = np.asarray(label)
        counts += np.bincount(label.reshape(-1), minlength=NUM_LABELS)[:NUM_LABELS]
    freq = counts / counts.sum()
    seen = freq > 0
    ratio = np.where(seen, np.median(freq[seen]) / np.where(seen, freq, 1), np.inf)
    return np.clip(ratio ** power, *clip).astype(np.float32)


def _preview(preview: dict) -> np.ndarray:
    p = jax.device_get(preview)
    rows = [[(p["image"][i] * 255).round().astype(np.uint8), colour_labels(p["label"][i]), colour_labels(p["pred"][i])]
            for i in range(len(p["image"]))]
    return files.grid(rows)


# --- evaluation -------------------------------------------------------------------------------

def make_evaluator(model: Parser, batch_size: int = 16, flip: bool = False, label_bias=None, scales=(1.0,)):
    """A function (params, examples) -> {variant: confusion matrix, pose pck} over the clean
    test images and their off-distribution versions (``flip``, ``label_bias``, ``scales``: as
    models.parser.predict)."""

    @jax.jit
    def predict(params, image, label, keypoints, source, valid):
        out = {}
        for kind in ("clean",) + parser_augment.OFF_DISTRIBUTION:
            x, y, kp = jax.vmap(lambda a, b, c, d: parser_augment.off_distribution(kind, a, b, c, d))(
                image, label, keypoints, source)
            labels, heatmaps = predict_labels(model, params, x * 2 - 1, flip, label_bias, scales)
            # padded examples are scored as label 0 predicted 0 and then removed from the count
            pred = jnp.where(valid[:, None, None], labels, 0)
            conf = parsing.confusion(pred, jnp.where(valid[:, None, None], y, 0))
            out[kind] = (conf.at[0, 0].add(-jnp.sum(~valid) * y.shape[1] * y.shape[2]),
                         keypoints_from_heatmaps(heatmaps), kp)
        return out

    def evaluate(params, examples: dict, raw: bool = False) -> dict:
        """Scores per variant; ``raw``: {variant: (confusion matrix, pose correct, pose total)}."""
        n = len(examples["image"])
        totals, poses = {}, {}
        for i in range(0, n, batch_size):
            take = min(batch_size, n - i)
            pad = lambda x: np.concatenate([x[i:i + take]] + [x[i + take - 1:i + take]] * (batch_size - take))  # noqa
            valid = np.arange(batch_size) < take
            out = jax.device_get(predict(params, pad(examples["image"]).astype(np.float32) / 255,
                                         pad(examples["label"])[..., 0].astype(np.int32),
                                         pad(examples["pose_keypoints"]).astype(np.float32),
                                         np.roll(pad(examples["color"]), 1, axis=0).astype(np.float32) / 255,
                                         valid))
            for kind, (conf, pred_kp, true_kp) in out.items():
                totals[kind] = totals.get(kind, 0) + np.asarray(conf, np.int64)
                c, t = parsing.pck(pred_kp[:take], true_kp[:take])
                pc, pt = poses.get(kind, (0, 0))
                poses[kind] = (pc + c, pt + t)
        if raw:
            return {kind: (conf, *poses[kind]) for kind, conf in totals.items()}
        return {kind: {**parsing.scores(conf), "pose_pck": poses[kind][0] / max(poses[kind][1], 1)}
                for kind, conf in totals.items()}

    return evaluate


def flat_scores(results: dict) -> dict:
    out = {}
    for kind, s in results.items():
        for name in ("miou_common", "miou_main", "foreground_iou", "pose_pck"):
            out[f"eval/{kind}/{name}"] = s[name]
    return out


def load_examples(name: str, split: str, data_dir: str, count: int) -> dict:
    """The first ``count`` examples of a split as host arrays (evaluation set)."""
    from tryon_jax.data import input_pipeline
    loader = input_pipeline.create_loader(name, split, count, data_dir=data_dir, shuffle=False, num_epochs=1,
                                          drop_remainder=False, shard=(0, 1))
    return next(iter(loader))


# --- weights file -----------------------------------------------------------------------------

def save_weights(path: str, params: dict, meta: dict) -> None:
    """params as float16 in an .npz (flattened 'a/b/c' names, no pickle) + a JSON next to it."""
    from tryon_jax.weights.params_io import flatten
    flat = {k: np.asarray(v, np.float16) for k, v in flatten(params).items()}
    with files.atomic_write(path) as f:
        np.savez_compressed(f, **flat)
    with files.atomic_write(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)


def warm_start(params: dict, path: str, model: Parser) -> dict:
    """``params`` with every parameter a parser weights file has. The file must be ``model``'s
    network, or the same one with fewer residual blocks (``extra_blocks``): the added blocks
    keep their identity initialisation, so the grown network starts as the file's."""
    from tryon_jax.person.parser import load_weights
    from tryon_jax.weights.params_io import flatten, unflatten
    loaded, meta = load_weights(path)
    have = tuple(meta.get("extra_blocks", ()))
    want = tuple(model.extra_blocks) + (0,) * (len(model.widths) - len(model.extra_blocks))
    have = have + (0,) * (len(want) - len(have))
    if (tuple(meta.get("widths", ())) != tuple(model.widths) or meta.get("input_pool") != model.input_pool
            or len(have) != len(want) or any(h > w for h, w in zip(have, want))):
        raise ValueError(f"parser.init_weights {path}: widths {meta.get('widths')} / input_pool "
                         f"{meta.get('input_pool')} / extra_blocks {list(have)} is not the config's network "
                         f"{list(model.widths)} / {model.input_pool} / {list(want)} or a part of it")
    flat, given = flatten(params), flatten(loaded)
    flat.update({k: np.asarray(v, flat[k].dtype) for k, v in given.items()})
    new = sorted(set(flat) - set(given))
    say(f"parser: starting from {path} (step {meta.get('step')})"
               + (f"; {len(new)} new parameters start as identity blocks" if new else ""))
    return unflatten(flat)


# --- the loop ---------------------------------------------------------------------------------

def setup(config, num_steps: int):
    """(model, step function, optimiser, initial state) of a parser run of ``num_steps``:
    fresh parameters, or those of ``parser.init_weights`` (grown if the config's net is deeper)."""
    pc, dc = config.parser, config.data
    model = Parser(tuple(pc.widths), pc.input_pool, tuple(pc.extra_blocks))
    schedule = optax.warmup_cosine_decay_schedule(0.0, pc.lr, min(pc.warmup_steps, num_steps // 2 + 1), num_steps,
                                                  pc.lr * pc.final_lr_fraction)
    step_fn, tx = make_step(config, model, schedule)
    params = model.init(jax.random.key(config.seed), jnp.zeros((1, dc.height, dc.width, 3)))["params"]
    if pc.init_weights:  # warm start (fine-tuning); a checkpoint in the workdir still wins in train_and_evaluate
        params = warm_start(params, pc.init_weights, model)
    return model, step_fn, tx, ParserState(jnp.zeros((), jnp.int32), params, tx.init(params))


def weights_meta(config, step: int, results, **extra) -> dict:
    """The .json written next to parser.npz: the network, its training and its last evaluation."""
    pc, dc = config.parser, config.data
    return {"widths": list(pc.widths), "input_pool": pc.input_pool, "extra_blocks": list(pc.extra_blocks),
            "step": step, "init_weights": os.path.basename(pc.init_weights) if pc.init_weights else None,
            "height": dc.height, "width": dc.width, "dataset": dc.name, "eval": results, **extra}


def train_and_evaluate(config, workdir: str) -> ParserState:
    from tryon_jax.data import input_pipeline
    pc, dc = config.parser, config.data
    os.makedirs(workdir, exist_ok=True)
    mesh = make_mesh()
    if config.batch_size % jax.device_count():
        raise ValueError(f"batch_size {config.batch_size} must be a multiple of the {jax.device_count()} devices")
    data_dir = dc.tfds_data_dir or os.path.join(workdir, "tfds")
    if jax.process_index() == 0:
        input_pipeline.ensure_dataset(dc.name, data_dir, dc.manual_dir)
    source = input_pipeline.data_source(dc.name, dc.split, data_dir)
    steps_per_epoch = len(source) // config.batch_size
    num_steps = pc.num_steps or pc.num_epochs * steps_per_epoch
    weights = class_weights(source, pc.weight_examples, pc.weight_power, tuple(pc.weight_clip))
    say("class weights: " + " ".join(f"{w:.2f}" for w in weights))
    model, step_fn, _, state = setup(config, num_steps)
    repl, batch_sh = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    state = jax.device_put(state, repl)
    step = jax.jit(step_fn, in_shardings=(repl, batch_sh, repl), out_shardings=(repl, repl, repl),
                   donate_argnums=(0,))
    loader = input_pipeline.create_loader(dc.name, dc.split, config.batch_size, data_dir=data_dir, shuffle=True,
                                          seed=config.seed, worker_count=dc.worker_count)
    iterator = iter(loader)
    mngr = checkpoint.manager(workdir, pc.keep_checkpoints or None)
    start = mngr.latest_step() or 0
    if start:
        restored, rest = checkpoint.restore_train(mngr, start, {"parser": state.params},
                                                  {"step": state.step, "opt_state": state.opt_state}, iterator)
        state = ParserState(rest["step"], restored["parser"], rest["opt_state"])
        say(f"resumed from step {start} in {checkpoint.checkpoint_dir(workdir)}")
    evaluate = make_evaluator(model)
    eval_set = load_examples(dc.name, pc.eval_split, data_dir, pc.eval_examples) if pc.eval_every else None
    log = MetricsLog(workdir, start)
    keys = ("image", "label", "color", "pose_keypoints")
    cw = jax.device_put(jnp.asarray(weights), repl)
    say(f"parser: training to step {num_steps} ({steps_per_epoch} steps per epoch, batch "
               f"{config.batch_size}) on {jax.device_count()} {jax.devices()[0].platform} devices")
    bar = tqdm(total=num_steps, initial=start, desc="parser", unit="step", disable=jax.process_index() != 0)
    t0, n0 = time.perf_counter(), start
    results = None
    for i in range(start, num_steps):
        raw = next(iterator)
        state, metrics, preview = step(state, global_batch({k: raw[k] for k in keys}, mesh), cw)
        done = i + 1
        if done % pc.log_every == 0 or done == num_steps:
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            if not all(math.isfinite(v) for v in metrics.values()):
                raise FloatingPointError(f"step {done}: non-finite metrics {metrics}")
            rate = (done - n0) / (time.perf_counter() - t0)
            log.scalars(done, {**metrics, "steps_per_second": rate, "examples_per_second": rate * config.batch_size})
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", ce=f"{metrics['ce']:.3f}", step_s=f"{rate:.2f}")
            t0, n0 = time.perf_counter(), done
        if done % pc.picture_every == 0 or done == num_steps:
            log.picture(done, "parser", _preview(preview))
        if eval_set is not None and (done % pc.eval_every == 0 or done == num_steps):
            results = evaluate(state.params, eval_set)
            log.scalars(done, flat_scores(results))
            bar.write(f"step {done}: mIoU common {results['clean']['miou_common']:.3f} main "
                      f"{results['clean']['miou_main']:.3f}; off-distribution foreground IoU "
                      + " ".join(f"{k} {results[k]['foreground_iou']:.3f}" for k in parser_augment.OFF_DISTRIBUTION))
        if done % pc.checkpoint_every == 0 or done == num_steps:
            checkpoint.save_train(mngr, done, {"parser": state.params},
                                  {"step": state.step, "opt_state": state.opt_state}, iterator)
            if jax.process_index() == 0:
                save_weights(os.path.join(workdir, "parser.npz"), jax.device_get(state.params),
                             weights_meta(config, done, results))
        bar.update(1)
    bar.close()
    mngr.wait_until_finished()
    mngr.close()
    log.close()
    return state
