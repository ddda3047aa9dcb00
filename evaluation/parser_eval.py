"""Evaluates parser weights on a VITON split: per-class IoU, mIoU over the 7 common and the
10 main classes, foreground IoU and heatmap-pose PCK@0.1, on the clean photos and on fixed
off-distribution versions (busy background, 0.6x on a grey canvas, 1.45x upper-body crop,
strong colour cast). Writes JSON and Markdown.

    python -m evaluation.parser_eval --data_dir=TFDS_DIR [--weights=parser.npz] [--out=DIR]
"""
import argparse
import sys

from tqdm import tqdm

from evaluation.report import write_report
from tryon_jax.metrics import parsing
from tryon_jax.models.parser import Parser, check_scales
from tryon_jax.person.training.parser_calibrate import parse_scales


def evaluate(weights: str | None, data_dir: str, name: str = "viton/cpvton", split: str = "test", count: int = 0,
             chunk: int = 256, flip: bool | None = None, bias: bool | None = None, scales=None) -> dict:
    """``flip``: mirrored test-time averaging (default: the weights file's test_time_flip, as
    HumanParser runs it); ``scales``: test-time scales (default: the file's test_time_scales);
    ``bias``: add the file's label_bias (default: when it has one)."""
    import numpy as np

    from tryon_jax.data import input_pipeline
    from tryon_jax.person.parser import load_weights
    from tryon_jax.person.training import parser_train
    params, meta = load_weights(weights)
    model = Parser.from_meta(meta)
    flip = bool(meta.get("test_time_flip", False)) if flip is None else flip
    scales = check_scales(meta.get("test_time_scales", (1.0,)) if scales is None else scales)
    label_bias = meta.get("label_bias") if bias is not False else None
    if bias and label_bias is None:
        raise ValueError(f"{weights or 'the committed weights'}: no label_bias to use (run tryon_jax.person.training.parser_calibrate)")
    evaluate_fn = parser_train.make_evaluator(model, flip=flip, label_bias=label_bias, scales=scales)
    size = len(input_pipeline.data_source(name, split, data_dir))
    count = min(count or size, size)
    loader = input_pipeline.create_loader(name, split, chunk, data_dir=data_dir, shuffle=False, num_epochs=1,
                                          drop_remainder=False, shard=(0, 1))
    matrices, pose, seen = {}, {}, 0
    with tqdm(total=count, desc="parser eval", unit="photo") as bar:
        for batch in loader:
            take = min(len(batch["image"]), count - seen)
            batch = {k: v[:take] for k, v in batch.items()}
            for kind, (conf, correct, total) in evaluate_fn(params, batch, raw=True).items():
                matrices[kind] = matrices.get(kind, 0) + np.asarray(conf)
                c, t = pose.get(kind, (0, 0))
                pose[kind] = (c + correct, t + total)
            seen += take
            bar.update(take)
            if seen >= count:
                break
    results = {kind: {**parsing.scores(m), "pose_pck": pose[kind][0] / max(pose[kind][1], 1)}
               for kind, m in matrices.items()}
    return {"weights": weights or "committed", "dataset": f"{name}:{split}", "photos": seen, "step": meta.get("step"),
            "test_time_flip": flip, "test_time_scales": list(scales), "label_bias": label_bias, "results": results}


def markdown(report: dict) -> str:
    kinds = list(report["results"])
    lines = [f"# Parser evaluation: {report['dataset']}, {report['photos']} photos (weights {report['weights']}, "
             f"test-time flip {'on' if report.get('test_time_flip') else 'off'}, scales "
             f"{', '.join(f'{s:g}' for s in report.get('test_time_scales', [1]))}, label bias "
             f"{'on' if report.get('label_bias') else 'off'})", "",
             "| class | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for row in ("miou_common", "miou_main", "foreground_iou", "pose_pck"):
        lines.append(f"| **{row}** | " + " | ".join(f"{report['results'][k][row]:.3f}" for k in kinds) + " |")
    for cls in parsing.GROUPS:
        lines.append(f"| {cls} | " + " | ".join(f"{report['results'][k]['iou'][cls]:.3f}" for k in kinds) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.parser_eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="parser .npz (default: the committed weights)")
    ap.add_argument("--data_dir", required=True, help="TFDS data_dir holding the dataset (tryon_datasets.viton)")
    ap.add_argument("--name", default="viton/cpvton")
    ap.add_argument("--split", default="test")
    ap.add_argument("--count", type=int, default=0, help="photos (0: the whole split)")
    ap.add_argument("--flip", choices=["on", "off"], help="test-time mirror averaging (default: as the weights "
                    "file says, which is how prepare_person runs it)")
    ap.add_argument("--bias", choices=["on", "off"], help="add the weights file's calibrated label_bias (default: "
                    "when the file has one, as prepare_person runs it)")
    ap.add_argument("--scales", help="comma-separated test-time scales, 1 first (default: as the weights file says)")
    ap.add_argument("--out", default="parser_eval", help="folder for parser_eval.json and parser_eval.md")
    args = ap.parse_args(argv)
    return write_report(lambda: evaluate(args.weights, args.data_dir, args.name, args.split, args.count,
                                         flip=None if args.flip is None else args.flip == "on",
                                         bias=None if args.bias is None else args.bias == "on",
                                         scales=None if args.scales is None else parse_scales(args.scales)),
                        markdown, args.out, "parser_eval")


if __name__ == "__main__":
    sys.exit(main())
