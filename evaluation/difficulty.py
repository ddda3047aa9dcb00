"""Try-on difficulty from the pose: the seed's spread measure C and an easy/medium/hard classifier.

C = mean L1 distance of the neck, shoulders, elbows and wrists (OpenPose-18 indices 1..7) to
their centroid, over the points that are present (missing points are (0, 0, 0)). Spread-out
arms are easier to dress than arms crossing the body, so large C means easy.

The thresholds below were fitted on ACGPN's official lists of the 2032 VITON test persons
(easy 1095 / medium 514 / hard 423) by maximising the balanced accuracy over pairs of cut points;
reproduce with::

    python -m evaluation.difficulty --fit

The report (AUCs, accuracy, confusion matrix) comes from the same command without --fit.

A second measure, ``arm_reach`` (ours), separates the official lists better: how far each
wrist lies outside its own shoulder, in shoulder widths, taking the lesser of the two arms
(the arm most in front of the body decides); a missing wrist counts as 0.
"""
import argparse
import json
import os
import sys

import numpy as np

ARM_POINTS = slice(1, 8)  # neck, R shoulder, R elbow, R wrist, L shoulder, L elbow, L wrist
R_SHOULDER, R_WRIST, L_SHOULDER, L_WRIST = 2, 4, 5, 7
LEVELS = ("easy", "medium", "hard")
# Fitted with --fit on the 2032 official test poses (see the module docstring):
# value >= easy -> easy; value < hard -> hard; else medium.
THRESHOLDS = {"easy": 82.749, "hard": 80.045}  # for pose_spread (the seed's C, pixels)
REACH_THRESHOLDS = {"easy": 0.008, "hard": -0.135}  # for arm_reach (shoulder widths)


def pose_spread(keypoints) -> np.ndarray | float:
    """The seed's C for (18, 3) or (N, 18, 3) keypoints (x, y, confidence). Points with
    x = y = conf = 0 are missing and skipped; with fewer than two points C is 0."""
    k = np.asarray(keypoints, np.float64)
    if k.shape[-2:] != (18, 3):
        raise ValueError(f"keypoints must have shape (18, 3) or (N, 18, 3), got {k.shape}")
    arms = k[..., ARM_POINTS, :2]
    present = np.any(k[..., ARM_POINTS, :] != 0, axis=-1)
    count = present.sum(-1)
    centroid = (arms * present[..., None]).sum(-2) / np.maximum(count, 1)[..., None]
    dist = np.abs(arms - centroid[..., None, :]).sum(-1)
    c = (dist * present).sum(-1) / np.maximum(count, 1)
    c = np.where(count >= 2, c, 0.0)
    return float(c) if np.ndim(c) == 0 else c


def arm_reach(keypoints) -> np.ndarray | float:
    """min over the two arms of (wrist x beyond its shoulder, outwards) / shoulder width, for
    (18, 3) or (N, 18, 3) keypoints; a missing wrist gives 0, missing shoulders give 0."""
    k = np.asarray(keypoints, np.float64)
    if k.shape[-2:] != (18, 3):
        raise ValueError(f"keypoints must have shape (18, 3) or (N, 18, 3), got {k.shape}")
    present = np.any(k != 0, axis=-1)
    x = k[..., 0]
    span = x[..., L_SHOULDER] - x[..., R_SHOULDER]
    shoulders = present[..., L_SHOULDER] & present[..., R_SHOULDER]
    width = np.maximum(np.abs(span), 1.0)
    outward = np.sign(span)  # image direction from the right shoulder to the left one
    right = np.where(present[..., R_WRIST], (x[..., R_SHOULDER] - x[..., R_WRIST]) * outward / width, 0.0)
    left = np.where(present[..., L_WRIST], (x[..., L_WRIST] - x[..., L_SHOULDER]) * outward / width, 0.0)
    reach = np.where(shoulders, np.minimum(right, left), 0.0)
    return float(reach) if np.ndim(reach) == 0 else reach


METHODS = {"spread": (pose_spread, THRESHOLDS), "reach": (arm_reach, REACH_THRESHOLDS)}


def classify(keypoints, thresholds=None, method: str = "spread"):
    """'easy', 'medium' or 'hard' for one pose, or an array of them for (N, 18, 3).
    ``method``: 'spread' (the seed's C) or 'reach' (arm_reach)."""
    measure, default = METHODS[method]
    t = thresholds or default
    out = classify_c(np.asarray(measure(keypoints)), t["hard"], t["easy"])
    return str(out) if out.ndim == 0 else out


def auc(high, low) -> float:
    """P(a > b) + 0.5 P(a == b) for a from ``high``, b from ``low`` (Mann-Whitney)."""
    high, low = np.asarray(high, np.float64), np.asarray(low, np.float64)
    order = np.sort(low)
    below = np.searchsorted(order, high, side="left")
    equal = np.searchsorted(order, high, side="right") - below
    return float((below + 0.5 * equal).sum() / (len(high) * len(low)))


def balanced_accuracy(predicted, truth) -> float:
    return float(np.mean([np.mean(predicted[truth == level] == level) for level in LEVELS]))


def fit_thresholds(c: np.ndarray, truth: np.ndarray) -> dict:
    """The (hard, easy) cut points that maximise the balanced accuracy (mean recall of the three
    levels; plain accuracy would label almost everything 'easy', the majority); candidates are
    midpoints of the sorted C values."""
    values = np.unique(np.round(c, 3))
    cuts = np.concatenate([[values[0] - 1], (values[1:] + values[:-1]) / 2, [values[-1] + 1]])
    cuts = cuts[:: max(1, len(cuts) // 300)]
    best = (-1.0, None)
    for i, lo in enumerate(cuts):
        for hi in cuts[i:]:
            acc = balanced_accuracy(classify_c(c, lo, hi), truth)
            if acc > best[0]:
                best = (acc, {"easy": round(float(hi), 3), "hard": round(float(lo), 3)})
    return best[1]


def classify_c(c, hard, easy):
    """Levels from measure values: >= easy -> easy, < hard -> hard, else medium."""
    return np.where(c >= easy, "easy", np.where(c < hard, "hard", "medium"))


def report(c: np.ndarray, truth: np.ndarray, thresholds=None) -> dict:
    t = thresholds or THRESHOLDS
    predicted = classify_c(c, t["hard"], t["easy"])
    by = {level: c[truth == level] for level in LEVELS}
    confusion = {f"true_{a}": {f"pred_{b}": int(np.sum((truth == a) & (predicted == b))) for b in LEVELS}
                 for a in LEVELS}
    return {
        "n": int(len(c)), "counts": {k: int(len(v)) for k, v in by.items()},
        "auc_easy_vs_hard": round(auc(by["easy"], by["hard"]), 4),
        "auc_easy_vs_medium": round(auc(by["easy"], by["medium"]), 4),
        "auc_medium_vs_hard": round(auc(by["medium"], by["hard"]), 4),
        "accuracy": round(float(np.mean(predicted == truth)), 4),
        "balanced_accuracy": round(balanced_accuracy(predicted, truth), 4),
        "thresholds": t, "confusion": confusion,
        "mean": {k: round(float(v.mean()), 3) for k, v in by.items()},
    }


def load_official(poses: str | None = None, lists_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Keypoints (N, 18, 3) of every person in the official lists and its level. ``poses``: a
    folder of ID_0_keypoints.json files, or None for the shipped keypoints of the 2032 test persons."""
    from tryon_jax.data import samples
    if lists_dir:
        levels = {}
        for level in LEVELS:
            with open(os.path.join(lists_dir, f"{level}.txt")) as f:
                levels.update({line.strip(): level for line in f if line.strip()})
    else:
        from tryon_datasets.viton.viton import official_difficulty
        levels = official_difficulty()
    lists_dir = lists_dir or _default_lists()
    names, truth = list(levels), list(levels.values())
    stems = [os.path.splitext(n)[0] for n in names]
    if poses is None:
        with np.load(os.path.join(lists_dir, "test_poses.npz")) as shipped:
            table = dict(zip(shipped["names"].tolist(), shipped["keypoints"]))
        keypoints = np.stack([table[s] for s in stems])
    else:
        keypoints = np.stack([samples.read_pose(os.path.join(poses, s + "_keypoints.json")) for s in stems])
    return keypoints, np.asarray(truth), names


def _default_lists() -> str:
    import tryon_datasets.viton as viton
    return os.path.join(os.path.dirname(viton.__file__), "difficulty")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.difficulty", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--poses", help="folder of test pose JSONs (ID_0_keypoints.json); default: the shipped "
                                        "keypoints of the 2032 official test persons")
    parser.add_argument("--lists", default=None, help="folder with easy.txt, medium.txt, hard.txt (default: shipped)")
    parser.add_argument("--fit", action="store_true", help="fit the thresholds and report with them")
    parser.add_argument("--out", help="also write the JSON report here")
    args = parser.parse_args(argv)
    keypoints, truth, _ = load_official(args.poses, args.lists)
    result = {}
    for method, (measure, default) in METHODS.items():
        c = measure(keypoints)
        result[method] = report(c, truth, fit_thresholds(c, truth) if args.fit else default)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        from tryon_jax.core.files import atomic_write
        with atomic_write(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
