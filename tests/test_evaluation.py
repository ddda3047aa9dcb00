"""Batch evaluation of a workdir with two checkpoints: per-step JSON, report, plot, skipping,
reproducibility, and clear errors."""
import json

import pytest

from configs import viton
from evaluation import evaluate, report
from tests.conftest import SAMPLE
from tests.torch_writer import save_state_dict
from tryon_jax.weights import checkpoint, convert, recipe, sources


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, recipe_variables):
    root = tmp_path_factory.mktemp("eval")
    checkpoint.save_generators(str(root / "work"), 100, recipe_variables)
    checkpoint.save_generators(str(root / "work"), 200, sources.recipe_variables(salt="second/"))
    sd = {k: recipe.recipe_array("inception_v3", k, s) for k, s in convert.inception_layout().items()}
    save_state_dict(root / "inception_v3.pth", sd)
    (root / "paired.txt").write_text("000001_0.jpg 000001_1.jpg\n003998_0.jpg 003998_1.jpg\n")
    (root / "unpaired.txt").write_text("000001_0.jpg 001744_1.jpg\n003998_0.jpg 007405_1.jpg\n")
    return root


def _config(root):
    config = viton.get_config()
    config.eval.data_dir = str(SAMPLE)
    config.eval.paired_pairs = str(root / "paired.txt")
    config.eval.unpaired_pairs = str(root / "unpaired.txt")
    config.eval.inception_weights = str(root / "inception_v3.pth")
    config.eval.batch_size = 2
    return config


def test_evaluates_all_checkpoints_then_skips(workdir):
    work = str(workdir / "work")
    written = evaluate.run(_config(workdir), work)
    assert [p.rsplit("/", 1)[-1] for p in written] == ["100.json", "200.json"]
    results = [json.loads((workdir / "work" / "eval" / f"{s}.json").read_text()) for s in (100, 200)]
    for r in results:
        assert 0 < r["ssim"]["all"] <= 1 and 0 <= r["ms_ssim"]["all"] <= 1
        assert r["is"]["all"] >= 1 and r["fid"]["all"] >= 0
        assert r["count_paired"]["all"] == 2 and sum(r["count_paired"][s] or 0 for s in ("easy", "medium", "hard")) == 2
    assert results[0]["ssim"]["all"] != results[1]["ssim"]["all"]  # different weights, different images
    text = (workdir / "work" / "eval" / "report.md").read_text()
    assert "| 100 |" in text and "| 200 |" in text
    assert (workdir / "work" / "eval" / "metrics.png").stat().st_size > 1000
    assert evaluate.run(_config(workdir), work) == []  # already evaluated: skipped
    again = evaluate.run(_config(workdir), work, which="200", force=True)
    assert json.loads(open(again[0]).read())["ssim"] == results[1]["ssim"]  # reproducible to the bit


def test_select_steps_and_errors(workdir, tmp_path):
    assert evaluate.select_steps([100, 200], "latest") == [200]
    assert evaluate.select_steps([100, 200], "100,200") == [100, 200]
    with pytest.raises(ValueError, match="300"):
        evaluate.select_steps([100, 200], "300")
    with pytest.raises(FileNotFoundError, match="no checkpoints"):
        evaluate.run(_config(workdir), str(tmp_path / "empty"))
    config = _config(workdir)
    config.eval.inception_weights = str(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match="inception_v3 state_dict"):
        evaluate.run(config, str(workdir / "work"), force=True)


def test_report_plot_handles_missing_values():
    results = [{"step": s, "ssim": {"all": 0.5 + s / 1000, "easy": None, "medium": 0.4, "hard": None},
                "ms_ssim": {"all": 0.9, "easy": None, "medium": None, "hard": None},
                "is": {"all": 1.2, "easy": None, "medium": None, "hard": None},
                "fid": {"all": None, "easy": None, "medium": None, "hard": None},
                "count_paired": {"all": 1}, "count_unpaired": {"all": 1}} for s in (1, 2)]
    assert report.plot(results).shape == (480, 720, 3)
    assert "| 2 | 0.5020 |" in report.markdown(results)


def test_model_folder_on_tfds_pairs_without_inception_weights(tmp_path, capsys):
    """No Inception weights: SSIM and MS-SSIM are computed (overall and per difficulty), IS and
    FID are reported as not computed with the reason; the pairs are every test person of the
    TFDS dataset; the console shows the table, not orbax's chatter."""
    from absl import flags

    from evaluation.__main__ import main as cli
    from tryon_jax.acgpn import train_step
    from tryon_jax.data import input_pipeline
    from tryon_jax.models.spec import ModelSpec
    from tryon_jax.weights import shipped
    spec = ModelSpec(height=64, width=48, ngf=4, ndf=4)
    variables = train_step.init_variables(0, spec)
    shipped.write_model(str(tmp_path / "model"), {n: variables[n] for n in train_step.GENERATORS}, spec,
                        {"training": {"steps": 7}})
    input_pipeline.ensure_dataset("viton/acgpn", str(tmp_path / "tfds"), str(SAMPLE))
    config = viton.get_config()
    config.eval.update(tfds_data_dir=str(tmp_path / "tfds"), tfds_name="viton/acgpn", batch_size=8)
    written = evaluate.run(config, str(tmp_path / "work"), model=str(tmp_path / "model"))
    result = json.loads(open(written[0]).read())
    assert written[0].endswith("7.json") and result["model"] == str(tmp_path / "model")
    assert result["count_paired"]["all"] == 16 and 0 < result["ssim"]["all"] < 1 and 0 < result["ms_ssim"]["all"] < 1
    assert all(result["ssim"][s] is not None for s in ("easy", "medium", "hard"))
    assert result["is"]["all"] is None and result["fid"]["all"] is None
    assert "inception_weights" in result["unpaired_note"]
    assert result["protocol"]["scored_at"] == [256, 192] and result["protocol"]["model_resolution"] == [64, 48]
    text = (tmp_path / "work" / "eval" / "report.md").read_text()
    assert "IS and FID: not computed: no eval.inception_weights" in text
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["evaluation", "--config=configs/viton.py", f"--workdir={tmp_path / 'work'}",
                 f"--model={tmp_path / 'model'}"])
    assert cli([]) == 0  # already evaluated: prints the table
    out = capsys.readouterr()
    assert "| 7 |" in out.out and "IS and FID: not computed" in out.out
    flags.FLAGS.unparse_flags()
