"""Training: schedule and initialisation units, a step on 1 vs 8 devices, 2 processes vs 1,
and kill -9 + rerun reaching the same parameters as an uninterrupted run.

The end-to-end runs use main.py on the shipped samples with a tiny model (64x48, width 4)
and share one persistent compilation cache."""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO, SAMPLE
from tryon_jax.acgpn import batches, train, train_step
from tryon_jax.core import mesh
from tryon_jax.models.spec import ModelSpec

TINY = ["--config.model.ngf=4", "--config.model.ndf=4", "--config.batch_size=4", "--config.eval_every=0",
        "--config.train.log_every=1", "--config.train.picture_every=2", "--config.train.checkpoint_every=1",
        "--config.train.keep_checkpoints=0", "--config.train.async_checkpoints=False"]
STEPS = 4


def _config(**train_overrides):
    from configs import demo
    config = demo.get_config()
    config.model.update(ngf=4, ndf=4)
    config.train.update(train_overrides)
    return config


def test_stages_and_learning_rate():
    stages = train_step.parse_stages("5:G1,G2,D1; 0:G1,D1 ;10:all")
    assert [s for s, _ in stages] == [0, 5, 10] and stages[0][1] == {"G1", "D1"}
    starts, active = train_step.stage_table(stages, steps_per_epoch=3)
    assert starts.tolist() == [0, 15, 30] and active.sum(1).tolist() == [2, 3, 8]
    for bad in ("1:G1", "0:G9", "G1,G2", ""):
        with pytest.raises(ValueError, match="train.stages"):
            train_step.parse_stages(bad)
    tc = _config(niter=2, niter_decay=4, lr=1.0).train
    lrs = [float(train_step.learning_rate(s, tc, 10)) for s in (0, 19, 20, 30, 59, 60, 200)]
    assert lrs == [1.0, 1.0, 1.0, 0.75, 0.25, 0.0, 0.0]


def test_model_spec_validates_and_round_trips():
    spec = ModelSpec(height=128, width=96, ngf=16)
    assert ModelSpec.from_dict(json.loads(spec.to_json())) == spec and not spec.faithful and ModelSpec().faithful
    for bad in (dict(height=100, width=75), dict(height=256, width=256), dict(image_generator="unet"),
                dict(ngf=0)):
        with pytest.raises(ValueError):
            ModelSpec(**bad)
    with pytest.raises(ValueError, match="unknown"):
        ModelSpec.from_dict({"heigth": 256})


def test_initialisation_is_acgpns():
    spec = ModelSpec(height=64, width=48, ngf=4, ndf=4)
    v = train_step.init_variables(0, spec)
    assert set(v) == set(train_step.NETWORKS)
    kernel = v["G1"]["params"]["conv1_0"]["kernel"]
    assert abs(kernel.std() - 0.02) < 0.004 and not np.any(v["G1"]["params"]["conv1_0"]["bias"])
    fc2 = v["U"]["params"]["stn"]["loc_net"]["cnn"]["fc2"]
    assert not np.any(fc2["kernel"])
    np.testing.assert_allclose(np.tanh(fc2["bias"]).reshape(25, 2), train_step.tps.target_control_points(), atol=1e-6)
    assert train_step.init_variables(0, spec)["G"]["params"]["conv9_6"]["kernel"].tobytes() == \
        v["G"]["params"]["conv9_6"]["kernel"].tobytes()


def test_training_inputs():
    keys = mesh.example_keys(jax.random.key(0), 3)
    holes = np.asarray(jax.vmap(lambda k: batches.random_holes(k, 64, 48))(keys))
    assert holes.shape == (3, 64, 48, 1) and set(np.unique(holes)) <= {0.0, 1.0}
    assert all(0.01 < h.mean() < 0.7 for h in holes) and not np.array_equal(holes[0], holes[1])
    label = jnp.zeros((1, 256, 192, 1)).at[:, :128].set(7.0)
    small = batches.resize({"label": label, "image": jnp.ones((1, 256, 192, 3))}, 64, 48)
    assert small["label"].shape == (1, 64, 48, 1) and float(small["label"][0, 0, 0, 0]) == 7.0
    big = batches.resize({"label": label, "image": jnp.ones((1, 256, 192, 3))}, 512, 384)
    assert big["image"].shape == (1, 512, 384, 3) and set(np.unique(big["label"])) == {0.0, 7.0}
    with pytest.raises(ValueError, match="integer factor"):
        batches.resize({"label": label}, 96, 80)


def _env(cache_dir, devices=1, x64=False):
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(cache_dir), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PLATFORMS="cpu", JAX_ENABLE_X64=str(int(x64)))
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _main(workdir, *extra, steps=STEPS):
    return [sys.executable, str(REPO / "main.py"), "--config", str(REPO / "configs" / "demo.py"),
            "--workdir", str(workdir), *TINY, f"--config.train.num_steps={steps}", *extra]


def _params(workdir, step=STEPS) -> dict:
    from tryon_jax.weights import checkpoint, sources
    return sources.flatten(checkpoint.restore_generators(str(workdir), step))


def _losses(workdir) -> np.ndarray:
    lines = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    return np.array([[x["loss_G"], x["loss_D"]] for x in lines])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("jax_cache")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cache_dir):
    """One single-process run of STEPS steps (the reference for resume and multi-process)."""
    workdir = tmp_path_factory.mktemp("uninterrupted")
    proc = subprocess.run(_main(workdir), cwd=REPO, env=_env(cache_dir), capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


def test_demo_run_writes_what_a_person_looks_at(uninterrupted):
    lines = [json.loads(x) for x in (uninterrupted / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, STEPS + 1))
    assert all(np.isfinite(x["loss_G"]) and np.isfinite(x["loss_D"]) and x["lr"] > 0 for x in lines)
    pictures = sorted(p.name for p in (uninterrupted / "samples").iterdir())
    assert pictures == ["train_00000002.png", "train_00000004.png"]
    assert any((uninterrupted / "tensorboard").iterdir())
    assert json.loads((uninterrupted / "model_spec.json").read_text())["ngf"] == 4


def test_trained_workdir_tries_on_and_exports(uninterrupted, cache_dir, tmp_path):
    """README's second command (try-on with the latest checkpoint), then export from the workdir."""
    from tryon_jax import export
    from tryon_jax.data import samples
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("000001_0.jpg 001744_1.jpg\n")
    cmd = _main(uninterrupted, "--config.job=tryon", f"--config.tryon.pairs={pairs}", "--config.tryon.batch_size=1")
    proc = subprocess.run(cmd, cwd=REPO, env=_env(cache_dir), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"step {STEPS} of" in proc.stdout
    result = uninterrupted / "tryon" / "results" / "000001_0__001744_1.png"
    from PIL import Image
    assert Image.open(result).size == (48, 64)
    assert export.main(["--workdir", str(uninterrupted), "--out", str(tmp_path / "export"), "--platforms=cpu"]) == 0
    meta = json.loads((tmp_path / "export" / export.META_FILE).read_text())
    assert meta["output_size"] == [64, 48] and meta["model_spec"]["ngf"] == 4
    raw = samples.stack([samples.load_raw(str(SAMPLE), samples.read_pairs(str(pairs))[0])],
                     samples.RAW_KEYS)
    out = export.load(str(tmp_path / "export"))(raw, np.zeros((1, 2), np.uint32))
    assert out["fake_image"].shape == (1, 64, 48, 3) and np.isfinite(np.asarray(out["fake_image"])).all()


@pytest.mark.slow
def test_kill_9_then_rerun_reaches_the_same_parameters(tmp_path, cache_dir, uninterrupted):
    workdir = tmp_path / "run"
    cmd = _main(workdir)
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(cache_dir), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (workdir / "checkpoints" / "2").is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    assert done and max(done) < STEPS, done
    rerun = subprocess.run(cmd, cwd=REPO, env=_env(cache_dir), capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resumed from step" in rerun.stderr
    expected, got = _params(uninterrupted), _params(workdir)
    assert expected.keys() == got.keys()
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k], err_msg=k)
    steps = [json.loads(x)["step"] for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _moments(workdir, step) -> dict:
    """Adam's first and second moments per network at ``step``, from the checkpoint."""
    from tryon_jax.weights import checkpoint
    with jax.enable_x64(True):  # restore float64 as float64
        opt = checkpoint.restore_generators(str(workdir), step, checkpoint.TRAIN_STATE)["opt_state"]
    return {n: (jax.tree.leaves(s["mu"]), jax.tree.leaves(s["nu"])) for n, s in opt.items()}


FLOAT64 = ["--config.train.param_dtype=float64"]


@pytest.fixture(scope="module")
def uninterrupted_f64(tmp_path_factory, cache_dir):
    """Two single-process float64 steps: the reference of the two-process run."""
    workdir = tmp_path_factory.mktemp("uninterrupted_f64")
    proc = subprocess.run(_main(workdir, *FLOAT64, steps=2), cwd=REPO, env=_env(cache_dir, x64=True),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, cache_dir, uninterrupted_f64):
    """2 processes (gloo collectives, each reading its half of every global batch) vs 1, two
    steps in float64. Only reduction order differs, so (as in the 1-vs-8-device test below)
    losses and gradients agree to float64 roundoff times the step's condition number, < 1e-10
    relative on any CPU. The gradients are compared through Adam's moments (mu, nu are sums
    of g and g^2 over the two steps); the weights are the optimizer's function of them, whose
    multi-device update the 1-vs-8-device test checks."""
    workdir = tmp_path / "multi"
    port = _free_port()
    procs = [subprocess.Popen(_main(workdir, *FLOAT64, "--multihost", f"--coordinator_address=127.0.0.1:{port}",
                                    "--num_processes=2", f"--process_id={i}", steps=2),
                              cwd=REPO, env=_env(cache_dir, x64=True), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    np.testing.assert_allclose(_losses(workdir), _losses(uninterrupted_f64), rtol=1e-10, atol=0)
    expected, got = _moments(uninterrupted_f64, 2), _moments(workdir, 2)
    assert expected.keys() == got.keys() == set(train_step.NETWORKS)
    for net in expected:
        for want, have in zip(expected[net], got[net]):
            assert {x.dtype for x in want + have} == {np.dtype(np.float64)}
            diff = np.sqrt(sum(np.sum(np.square(a - b)) for a, b in zip(want, have)))
            assert diff <= 1e-10 * np.sqrt(sum(np.sum(np.square(a)) for a in want)), net


_EQUIVALENCE = textwrap.dedent("""
    import json, jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from configs import demo
    from tryon_jax.acgpn import train_step
    from tryon_jax.core.mesh import global_batch, state_shardings
    from tryon_jax.data import samples
    from tryon_jax.models.spec import ModelSpec
    config = demo.get_config()
    config.model.update(ngf=4, ndf=4)
    config.train.param_dtype = "float64"
    spec = ModelSpec.from_dict(config.model)
    pairs = samples.read_pairs("data/viton_acgpn_sample/test_pairs_same.txt")[:8]
    raw = samples.stack([samples.load_raw("data/viton_acgpn_sample", p, "test") for p in pairs], samples.RAW_KEYS)
    fn = train_step.make_train_step(config, spec, steps_per_epoch=2, global_batch=8)
    results = {}
    for name, devices, shard in (("1", jax.devices()[:1], False), ("8", jax.devices(), False),
                                 ("8_sharded", jax.devices(), True)):
        mesh = Mesh(np.array(devices), ("data",))
        state = train_step.initial_state(config, spec)
        shardings = state_shardings(mesh, state, shard)
        repl = NamedSharding(mesh, P())
        step = jax.jit(fn, in_shardings=(shardings, NamedSharding(mesh, P("data")), repl),
                       out_shardings=(shardings, repl, repl))
        state, metrics, _ = step(jax.device_put(state, shardings), global_batch(raw, mesh), {})
        # Adam's first moment after one step is (1 - beta1) * gradient: compare gradients through it.
        mu = {n: state.opt_state[n].mu for n in train_step.NETWORKS}
        results[name] = jax.device_get((state.params, mu, metrics))
    initial = jax.device_get(train_step.initial_state(config, spec).params)
    ref_p, ref_mu, ref_m = results["1"]
    leaves = jax.tree.leaves
    maxabs = lambda a, b: max(float(np.abs(x - y).max()) for x, y in zip(leaves(a), leaves(b)))
    norm = lambda t: float(np.sqrt(sum(np.sum(np.square(x)) for x in leaves(t))))
    report = {"dtypes": sorted({str(x.dtype) for x in leaves((ref_p, ref_mu))})}
    for name in ("8", "8_sharded"):
        p, mu, m = results[name]
        report[name] = {
            "grad_rel": {n: norm(jax.tree.map(np.subtract, mu[n], ref_mu[n])) / norm(ref_mu[n])
                         for n in train_step.NETWORKS},
            "loss_rel": {k: float(abs(m[k] - ref_m[k]) / abs(ref_m[k])) for k in ("loss_G", "loss_D")},
            "grad_max": maxabs(mu, ref_mu) / (1 - config.train.beta1),
            "params_max": maxabs(p, ref_p), "update_max": maxabs(ref_p, initial),
            "lr": float(ref_m["lr"]), "eps": config.train.eps}
    print("RESULT", json.dumps(report))
""")


def test_one_step_is_the_same_on_1_and_8_devices(cache_dir):
    """One training step in float64 on 1 device, on 8 devices, and on 8 with sharded
    parameters. The three differ only in reduction order (the gradient's sum over devices,
    convolutions at per-device batch 8 vs 1), so each result is the exact step plus rounding
    error: float64's unit roundoff u = 1.1e-16 times the step's condition number k. The tiny
    model's 4x3 instance norms make k large; float32 runs of this test bound it by
    k < 3e5 (gradient difference 1.5e-2 relative at u = 6e-8 on an Intel Xeon, 4e-4 on an AMD
    EPYC; float32 also flips near-tied decisions, so that overstates k). Hence every gradient
    agrees to k u < 1e-10 relative on any CPU, and Adam's first step (update lr * g / (|g| +
    eps)) is Lipschitz in g with constant lr / eps, so the weights agree to lr * max|dg| / eps
    (that is large only where g is rounding noise around an exact 0, as for a bias before an
    instance norm). Measured on an Intel Xeon: gradients 1.4e-14 relative, losses 4e-16."""
    proc = subprocess.run([sys.executable, "-c", _EQUIVALENCE], cwd=REPO, env=_env(cache_dir, devices=8),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert report.pop("dtypes") == ["float64"]
    for name, r in report.items():
        assert r["update_max"] >= 0.99 * r["lr"], r  # the step moved the weights by ~lr
        assert max(r["loss_rel"].values()) < 1e-10, (name, r)
        assert max(r["grad_rel"].values()) < 1e-10, (name, r)
        assert r["params_max"] <= r["lr"] * r["grad_max"] / r["eps"] + 1e-15, (name, r)  # + float64 ulps of p


def test_fine_tuning_starts_from_the_released_checkpoints(tmp_path):
    from configs import viton
    from tests.torch_writer import save_state_dict
    from tryon_jax.weights import convert, recipe
    sds = recipe.acgpn_state_dicts(("U", "G1", "G2", "G", "D1"))
    for name, sd in sds.items():
        save_state_dict(tmp_path / f"latest_net_{name}.pth", sd, prefix=f"latest_net_{name}")
    config = viton.get_config()
    config.init.acgpn_checkpoints = str(tmp_path)
    state = train_step.initial_state(config, ModelSpec())
    expected = convert.acgpn_variables(sds)
    got = state.generators()
    for name in ("U", "G1", "G2", "G"):
        jax.tree.map(np.testing.assert_array_equal, got[name], expected[name])
    jax.tree.map(np.testing.assert_array_equal, state.params["D1"], expected["D1"]["params"])
    assert int(state.opt_state["G"].count) == 0
    # a bottoms model has the released shapes: it fine-tunes from the tops checkpoints
    lower = train_step.initial_state(config, ModelSpec(garment="lower")).generators()
    jax.tree.map(np.testing.assert_array_equal, lower["U"], expected["U"])
    config.model.ngf = 32
    with pytest.raises(ValueError, match="released shapes"):
        train_step.initial_state(config, ModelSpec.from_dict(config.model))


def test_vgg19_weights_are_named_or_the_perceptual_loss_is_off(tmp_path):
    config = _config(vgg19_weights="")
    assert train.vgg_constants(config) == {}
    config.train.vgg19_weights = str(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="torchvision vgg19"):
        train.vgg_constants(config)


def test_hd_image_generator_step_traces():
    """configs/hd.py's model (LocalEnhancer as G, 3 discriminator scales), shrunk: the step's
    shapes work out (traced with eval_shape, not compiled)."""
    from configs import hd
    config = hd.get_config()
    config.model.update(height=64, width=48, ngf=4, ndf=4, hd_ngf=4, hd_n_blocks_global=1, hd_n_blocks_local=1)
    spec = ModelSpec.from_dict(config.model)
    state = train_step.initial_state(config, spec)
    assert "model1_1_1" in state.params["G"] and "scale2_layer0_0" in state.params["D"]
    from tryon_jax.data import samples
    pair = samples.read_pairs(str(REPO / "data" / "viton_acgpn_sample" / "test_pairs_same.txt"))[0]
    raw = samples.stack([samples.load_raw(str(REPO / "data" / "viton_acgpn_sample"), pair)] * 2, samples.RAW_KEYS)
    fn = train_step.make_train_step(config, spec, steps_per_epoch=1, global_batch=2)
    new_state, metrics, pictures = jax.eval_shape(fn, state, raw, {})
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert pictures["result"].shape == (2, 64, 48, 3) and metrics["loss_G"].shape == ()


@pytest.mark.slow
def test_bfloat16_training_tracks_float32():
    """50 demo steps with the networks in bfloat16 (parameters, moments and losses float32)
    against float32, from the same initialisation and batches. bfloat16 rounds each operand to
    8 significant bits (2^-9 relative); the loss terms are means over many pixels, so they
    move by far less: each step's loss_G must stay within 2% (measured at most 0.45% on an
    Intel Xeon) and the last 10 steps' means within 10% of float32's descent since step 1
    (measured 0.1% of it)."""
    from configs import demo
    from tryon_jax.data import samples
    pairs = samples.read_pairs(str(SAMPLE / "test_pairs_same.txt"))
    losses = {}
    for dtype in ("float32", "bfloat16"):
        config = demo.get_config()
        config.train.dtype = dtype
        spec = ModelSpec.from_dict(config.model)
        state = train_step.initial_state(config, spec)
        step = jax.jit(train_step.make_train_step(config, spec, steps_per_epoch=4, global_batch=4))
        out = []
        for i in range(50):
            chunk = [pairs[(4 * i + j) % len(pairs)] for j in range(4)]
            raw = samples.stack([samples.load_raw(str(SAMPLE), p, "test") for p in chunk], samples.RAW_KEYS)
            state, metrics, _ = step(state, raw, {})
            out.append([float(metrics["loss_G"]), float(metrics["loss_D"])])
        losses[dtype] = np.array(out)
    f32, bf16 = losses["float32"], losses["bfloat16"]
    assert np.all(np.isfinite(bf16))
    assert np.max(np.abs(bf16[:, 0] - f32[:, 0]) / f32[:, 0]) < 0.02
    descent = f32[0, 0] - f32[-10:, 0].mean()
    assert descent > 5  # the demo's loss_G falls (63.9 -> 52.5 measured)
    assert abs(bf16[-10:, 0].mean() - f32[-10:, 0].mean()) < 0.1 * descent
    assert abs(bf16[-10:, 1].mean() - f32[-10:, 1].mean()) < 0.1 * (f32[0, 1] - f32[-10:, 1].mean())
