"""Scores the whole preparation of a person photo as users get it (PersonPreprocessor: framing,
BlazePose, the parser) against VITON's ground truth moved by the same framing: mIoU over the 7
common and the 10 main labels, foreground IoU, pose PCK@0.1 (torso), the persons refused, and
the framing's mean scale change and shift, on the clean test photos and the parser
evaluation's off-distribution versions (clutter, small, crop, colour). Writes JSON and Markdown.

    python -m evaluation.preparation_eval --data_dir=TFDS_DIR [--count=N] [--variants=clean,small]
    python -m evaluation.preparation_eval --data_dir=TFDS_DIR --split=train --fit   # framing ranges

``--fit`` prints where BlazePose finds the neck and how long the torso is on the clean photos
(the percentiles person.framing's ranges come from, measured on the train split) and the torso /
shoulder-width ratio (person.preprocessor.TORSO_PER_SHOULDER).
"""
import argparse
import json
import sys

import cv2
import numpy as np
from tqdm import tqdm

from evaluation.report import write_report
from tryon_jax.metrics import parsing

VARIANTS = ("clean", "clutter", "small", "crop", "colour")


def variant_batches(data_dir: str, name: str, split: str, count: int, variants, chunk: int = 32):
    """(variant, uint8 images, labels, keypoints) per chunk of the split's first ``count``
    photos (0: all) and variant; the labels and keypoints moved with the variant's picture."""
    import jax

    from tryon_jax.data import input_pipeline
    from tryon_jax.person.training import parser_augment
    size = len(input_pipeline.data_source(name, split, data_dir))
    count = min(count or size, size)
    loader = input_pipeline.create_loader(name, split, chunk, data_dir=data_dir, shuffle=False, num_epochs=1,
                                          drop_remainder=False, shard=(0, 1))
    seen = 0
    for batch in loader:
        take = min(len(batch["image"]), count - seen)
        image = batch["image"][:take].astype(np.float32) / 255
        label = batch["label"][:take][..., 0].astype(np.int32)
        keypoints = batch["pose_keypoints"][:take].astype(np.float32)
        source = np.roll(batch["color"][:take], 1, axis=0).astype(np.float32) / 255  # another garment: clutter
        for kind in variants:
            x, y, kp = jax.device_get(jax.vmap(lambda a, b, c, d: parser_augment.off_distribution(kind, a, b, c, d))(
                image, label, keypoints, source))
            yield kind, np.clip(np.round(np.asarray(x) * 255), 0, 255).astype(np.uint8), np.asarray(y), np.asarray(kp)
        seen += take
        if seen >= count:
            break


def moved_truth(label: np.ndarray, keypoints: np.ndarray, matrix: np.ndarray) -> tuple:
    """(label, where it is known, keypoints) of the ground truth in the framed picture."""
    h, w = label.shape
    moved = cv2.warpAffine(label.astype(np.uint8), matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    known = cv2.warpAffine(np.ones_like(label, np.uint8), matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    kp = keypoints.copy()
    kp[:, :2] = np.c_[keypoints[:, :2], np.ones(len(kp))] @ matrix.T
    inside = (kp[:, 0] >= 0) & (kp[:, 0] < w) & (kp[:, 1] >= 0) & (kp[:, 1] < h)
    kp[~inside | (keypoints[:, 2] <= 0)] = 0
    return moved, known > 0, kp


def evaluate(data_dir: str, name: str = "viton/cpvton", split: str = "test", count: int = 0,
             variants=VARIANTS, parser_weights: str | None = None, batch_size: int = 16) -> dict:
    from tryon_jax.person.framing import max_displacement
    from tryon_jax.person.preprocessor import PersonPreprocessor
    pre = PersonPreprocessor(parser_weights, batch_size=batch_size)
    totals = {k: {"confusion": 0, "pck": [0, 0], "persons": 0, "refused": [], "scale": [], "shift": [],
                  "identity": 0} for k in variants}
    with tqdm(desc="preparation eval", unit="photo") as bar:
        for kind, images, labels, keypoints in variant_batches(data_dir, name, split, count, variants):
            t = totals[kind]
            people = pre.prepare_batch(list(images), [f"{kind} {t['persons'] + i}" for i in range(len(images))])
            for person, label, kp in zip(people, labels, keypoints):
                t["persons"] += 1
                if isinstance(person, Exception):
                    t["refused"].append(str(person))
                    continue
                truth, known, truth_kp = moved_truth(label, kp, person.framing)
                t["confusion"] = t["confusion"] + np.asarray(parsing.confusion(person.label[known], truth[known]),
                                                             np.int64)
                c, n = parsing.pck(person.keypoints[None], truth_kp[None])
                t["pck"] = [t["pck"][0] + c, t["pck"][1] + n]
                t["scale"].append(abs(person.framing[0, 0] - 1))
                t["shift"].append(float(np.hypot(*person.framing[:, 2])))
                t["identity"] += bool(max_displacement(person.framing) < 1)
            bar.update(len(images))
    results = {}
    for kind, t in totals.items():
        scores = parsing.scores(t["confusion"]) if t["persons"] > len(t["refused"]) else {}
        results[kind] = {"persons": t["persons"], "refused": len(t["refused"]), "refusals": t["refused"][:20],
                         "miou_common": scores.get("miou_common"), "miou_main": scores.get("miou_main"),
                         "foreground_iou": scores.get("foreground_iou"), "iou": scores.get("iou"),
                         "pose_pck": t["pck"][0] / max(t["pck"][1], 1),
                         "framing_mean_scale_change": float(np.mean(t["scale"])) if t["scale"] else None,
                         "framing_mean_shift_px": float(np.mean(t["shift"])) if t["shift"] else None,
                         "framing_identity": t["identity"]}
    return {"dataset": f"{name}:{split}", "parser_weights": parser_weights or "committed", "results": results}


def fit(data_dir: str, name: str = "viton/cpvton", split: str = "test", count: int = 0) -> dict:
    """BlazePose's neck, torso and torso / shoulder width on the clean photos, as percentiles."""
    from tryon_jax.person.pose import BlazePose
    pose = BlazePose()
    necks, torsos, ratios = [], [], []
    for _, images, _, _ in tqdm(variant_batches(data_dir, name, split, count, ("clean",)), desc="fit", unit="chunk"):
        for image in images:
            lm = pose.landmarks33(image)
            if lm is None:
                continue
            xy = lm[:, :2] * (image.shape[1], image.shape[0]) - 0.5
            neck, hip = (xy[11] + xy[12]) / 2, (xy[23] + xy[24]) / 2
            necks.append(neck)
            torsos.append(np.linalg.norm(hip - neck))
            ratios.append(torsos[-1] / np.linalg.norm(xy[11] - xy[12]))
    ps = (0.5, 2.5, 50, 97.5, 99.5)  # person.framing: *_KEEP from the outer, *_RANGE from the inner pair
    q = lambda a: {f"p{p:g}": round(float(np.percentile(a, p)), 2) for p in ps}  # noqa: E731
    necks = np.array(necks)
    return {"persons": len(torsos), "neck_x": q(necks[:, 0]), "neck_y": q(necks[:, 1]), "torso": q(torsos),
            "torso_per_shoulder": q(ratios)}


def markdown(report: dict) -> str:
    kinds = list(report["results"])
    fmt = lambda v: "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = [f"# Preparation evaluation: {report['dataset']} (framing + BlazePose + parser "
             f"{report['parser_weights']}; ground truth moved by the framing)", "",
             "| | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for row in ("persons", "refused", "miou_common", "miou_main", "foreground_iou", "pose_pck",
                "framing_identity", "framing_mean_scale_change", "framing_mean_shift_px"):
        lines.append(f"| **{row}** | " + " | ".join(fmt(report["results"][k][row]) for k in kinds) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.preparation_eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data_dir", required=True, help="TFDS data_dir holding the dataset (tryon_datasets.viton)")
    ap.add_argument("--name", default="viton/cpvton")
    ap.add_argument("--split", default="test")
    ap.add_argument("--count", type=int, default=0, help="photos (0: the whole split)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--parser_weights", help="parser .npz (default: the committed weights)")
    ap.add_argument("--fit", action="store_true", help="print the framing's statistics instead")
    ap.add_argument("--out", default="preparation_eval", help="folder for preparation_eval.json and .md")
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        print(f"error: unknown variants {unknown}; use {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    if args.fit:
        try:
            print(json.dumps(fit(args.data_dir, args.name, args.split, args.count), indent=1))
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    return write_report(lambda: evaluate(args.data_dir, args.name, args.split, args.count, variants,
                                         args.parser_weights), markdown, args.out, "preparation_eval")


if __name__ == "__main__":
    sys.exit(main())
