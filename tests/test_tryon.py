"""Batched try-on: the CLI, the main job, export and reload, batch-size independence."""
import json

import jax
import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, SAMPLE
from tryon_jax import export, tryon
from tryon_jax.acgpn import inference
from tryon_jax.data import samples
from tryon_jax.weights import sources


@pytest.fixture(scope="module")
def two_pairs(tmp_path_factory):
    path = tmp_path_factory.mktemp("pairs") / "pairs.txt"
    path.write_text("000001_0.jpg 001744_1.jpg\n000097_0.jpg 019522_1.jpg\n001476_0.jpg 010281_1.jpg\n")
    return path


def _float64(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def test_results_do_not_depend_on_batch_partners(recipe_variables, two_pairs, tmp_path):
    """The first pair keeps its position, key and batch shape while its partner changes: the
    same executable computes its row from the same values, so the PNG is identical on any
    CPU. (Across batch sizes the last bits differ; test_batched_graph_equals_single_examples
    checks that part in float64.)"""
    pairs = samples.read_pairs(str(two_pairs))
    a = tryon.run(recipe_variables, str(SAMPLE), pairs, str(tmp_path / "a"), batch_size=2, progress=False)
    b = tryon.run(recipe_variables, str(SAMPLE), [pairs[0], pairs[2], pairs[1]], str(tmp_path / "b"), batch_size=2,
                  progress=False)
    assert [p.split("/")[-1] for p in a] == [
        "000001_0__001744_1.png", "000097_0__019522_1.png", "001476_0__010281_1.png"]
    ia, ib = np.asarray(Image.open(a[0])), np.asarray(Image.open(b[0]))
    assert ia.shape == (256, 192, 3)
    np.testing.assert_array_equal(ia, ib)
    assert not np.array_equal(ia, np.asarray(Image.open(a[1])))
    strip = Image.open(tmp_path / "a" / "strips" / "000001_0__001744_1.png")
    assert strip.size == (4 * 192, 256)


def test_batched_graph_equals_single_examples(recipe_variables):
    """The graph on a batch of 2 against each example alone, in float64: the discrete maps
    (argmax layout, thresholded mask) are identical and every continuous array agrees to 1e-7.
    The two runs differ only in rounding (per-example noise keys, no cross-example
    reductions): float64's 1.1e-16 times the random networks' amplification, measured
    1.7e-10 at the worst (G's logits) on an Intel Xeon; float32 gives 1e-2 here."""
    pairs = samples.read_pairs(str(SAMPLE / "test_pairs.txt"))[:2]
    examples = [samples.load_example(str(SAMPLE), p) for p in pairs]
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(0), i))(np.arange(2))
    with jax.enable_x64(True):
        variables = _float64(recipe_variables)
        both = inference.tryon(variables, _float64(samples.stack(examples)), keys)
        assert both["fake_image"].dtype == np.float64
        for i in range(2):
            one = inference.tryon(variables, _float64(samples.stack(examples[i:i + 1])), keys[i:i + 1])
            assert both.keys() == one.keys()
            for name in (k for k in one if np.ndim(one[k])):  # scalars are batch means
                want, got = np.asarray(one[name][0]), np.asarray(both[name][i])
                if want.dtype == np.float64:
                    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7, err_msg=name)
                elif want.ndim:  # masks, labels and noise: exact
                    np.testing.assert_array_equal(got, want, err_msg=name)


def test_cli_reports_bad_input(sample_copy, two_pairs, capsys):
    (sample_copy / "test_color" / "019522_1.jpg").write_bytes(b"garbage")
    code = tryon.main(["--recipe-weights", "--data", str(sample_copy), "--pairs", str(two_pairs),
                       "--out", str(sample_copy / "out")])
    assert code == 2
    assert "019522_1.jpg: cannot decode image" in capsys.readouterr().err


def test_cli_takes_at_most_one_weights_source(two_pairs, tmp_path, capsys, monkeypatch):
    from tryon_jax.weights import shipped
    assert tryon.main(["--recipe-weights", "--params", "p.npz", "--data", str(SAMPLE), "--pairs", str(two_pairs),
                       "--out", str(tmp_path)]) == 2
    assert "one weights source at most" in capsys.readouterr().err
    monkeypatch.setattr(shipped, "SHIPPED", tmp_path / "no_model")
    assert tryon.main(["--data", str(SAMPLE), "--pairs", str(two_pairs), "--out", str(tmp_path)]) == 2
    assert "no trained model is shipped with this checkout" in capsys.readouterr().err
    assert tryon.main(["--acgpn-checkpoints", str(tmp_path / "nowhere"), "--data", str(SAMPLE),
                       "--pairs", str(two_pairs), "--out", str(tmp_path)]) == 2
    assert "latest_net_U.pth" in capsys.readouterr().err


def test_cli_refuses_bottoms(two_pairs, tmp_path, capsys):
    assert tryon.main(["--recipe-weights", "--data", str(SAMPLE), "--pairs", str(two_pairs), "--out", str(tmp_path),
                       "--musinsa-data-dir", str(tmp_path), "--musinsa-category", "bottom"]) == 2
    err = capsys.readouterr().err
    assert "bottoms cannot be tried on: no lower-body model is configured" in err and "dresscode_lower.py" in err
    assert not (tmp_path / "results").exists()


def test_export_reload_matches_direct_call(recipe_variables, tmp_path):
    """The serialized export (symbolic batch size) against the function it was made from, in
    float64: the discrete outputs are identical and the images agree to 1e-7 (the lowerings
    may differ, so only rounding may; see test_batched_graph_equals_single_examples)."""
    with jax.enable_x64(True):
        variables = _float64(recipe_variables)
        out = export.write(variables, str(tmp_path / "export"), platforms=("cpu",), source="recipe")
        meta = json.loads((tmp_path / "export" / export.META_FILE).read_text())
        assert meta["inputs"]["pose_boxes"] == ["b", 18, 4, "int32"]
        call = export.load(out)
        reloaded, _ = sources.load_params(str(tmp_path / "export" / sources.PARAMS_FILE))
        assert jax.tree_util.tree_structure(reloaded) == jax.tree_util.tree_structure(variables)
        pairs = samples.read_pairs(str(SAMPLE / "test_pairs.txt"))
        for n in (1, 2):  # the symbolic batch dimension accepts any size
            batch = samples.stack([samples.load_raw(str(SAMPLE), p) for p in pairs[:n]], samples.RAW_KEYS)
            key_data = np.arange(2 * n, dtype=np.uint32).reshape(n, 2)
            got = call(batch, key_data)
            want = jax.jit(export.serving_fn)(reloaded, batch, key_data)
            assert set(got) == set(export.OUTPUTS)
            for k in got:
                assert got[k].shape[0] == n and got[k].dtype == want[k].dtype
                np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=0, atol=1e-7, err_msg=k)
            for k in ("fake_cl_dis", "armlabel_map"):
                np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]), err_msg=k)


def test_export_cli_explains_missing_weights(tmp_path, capsys, monkeypatch):
    from tryon_jax.weights import shipped
    monkeypatch.setattr(shipped, "SHIPPED", tmp_path / "no_model")
    assert export.main(["--out", str(tmp_path)]) == 2
    assert "no trained model is shipped" in capsys.readouterr().err
    assert export.main(["--model", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "model.json not found: not a model folder" in capsys.readouterr().err


def test_noise_is_per_example():
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(0), i))(np.arange(3))
    together = inference.draw_noise(keys, 3, 256, 192)
    alone = inference.draw_noise(keys[1:2], 1, 256, 192)
    for k in inference.NOISE_NAMES:
        np.testing.assert_array_equal(together[k][1:2], alone[k])


def test_noise_statistics():
    noise = inference.draw_noise(jax.random.key(0), 4, 256, 192)
    for v in noise.values():
        v = np.asarray(v)
        assert set(np.unique(v)) == {0.0, 1.0}
        assert abs(v.mean() - 0.1591) < 0.005  # P(N(0, 255) rounds to 255)


def test_main_jobs_without_weights_or_data_explain(tmp_path):
    import subprocess
    import sys
    cmd = [sys.executable, str(REPO / "main.py"), "--config", str(REPO / "configs" / "viton.py"),
           "--workdir", str(tmp_path / "run")]
    proc = subprocess.run(cmd + ["--config.job=tryon", f"--config.tryon.model={tmp_path}"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "not a model folder" in proc.stderr and "--acgpn-checkpoints" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)  # train, no VITON folder
    assert proc.returncode == 2 and "config.data.manual_dir" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(cmd + ["--config.model.height=100"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "multiples of 16" in proc.stderr and "Traceback" not in proc.stderr


def test_main_job_writes_pngs(tmp_path, two_pairs):
    import subprocess
    import sys
    cmd = [sys.executable, str(REPO / "main.py"), "--config", str(REPO / "configs" / "demo.py"),
           "--workdir", str(tmp_path / "run"), "--config.job=tryon", "--config.tryon.recipe_weights=True",
           f"--config.tryon.pairs={two_pairs}", "--config.tryon.batch_size=2"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = sorted(p.name for p in (tmp_path / "run" / "tryon" / "results").iterdir())
    assert results == ["000001_0__001744_1.png", "000097_0__019522_1.png", "001476_0__010281_1.png"]
