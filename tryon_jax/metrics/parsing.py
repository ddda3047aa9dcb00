"""Parsing metrics: per-class IoU over a whole test set (intersections and unions summed over
all images, then divided), and the class groups the parser's goals are stated in.

ACGPN ids: 0 background, 1 hair, 2 jumpsuit, 3 socks, 4 upper clothes, 5/6 shoe, 7 'noise'
(LIP dress), 8 pants, 9/10 leg, 11 left arm, 12 face, 13 right arm. Left/right shoe and leg
are merged for scoring ("treat 5/6 and 9/10 only as shoe and leg": the VITON README).
"""
import jax
import jax.numpy as jnp
import numpy as np

NUM_LABELS = 14
# Scoring groups: name -> ACGPN ids.
GROUPS = {"background": (0,), "hair": (1,), "jumpsuit": (2,), "socks": (3,), "upper_clothes": (4,),
          "shoes": (5, 6), "dress": (7,), "pants": (8,), "legs": (9, 10), "left_arm": (11,), "face": (12,),
          "right_arm": (13,)}
COMMON = ("background", "hair", "upper_clothes", "pants", "left_arm", "face", "right_arm")
MAIN = COMMON + ("dress", "legs", "shoes")


def confusion(pred, target, num_classes: int = NUM_LABELS) -> jax.Array:
    """(num_classes, num_classes) counts, rows = target, columns = prediction (int32)."""
    index = target.reshape(-1).astype(jnp.int32) * num_classes + pred.reshape(-1).astype(jnp.int32)
    return jnp.bincount(index, length=num_classes * num_classes).reshape(num_classes, num_classes)


def _grouped(matrix: np.ndarray) -> tuple[np.ndarray, list[str]]:
    names = list(GROUPS)
    m = np.zeros((len(names), len(names)), np.int64)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            m[i, j] = matrix[np.ix_(GROUPS[a], GROUPS[b])].sum()
    return m, names


def scores(matrix) -> dict:
    """Per-group IoU, mIoU over COMMON and MAIN, foreground IoU, pixel accuracy.
    A group absent from both target and prediction has IoU NaN and is left out of means."""
    matrix = np.asarray(matrix, np.int64)
    m, names = _grouped(matrix)
    inter = np.diag(m).astype(np.float64)
    union = m.sum(0) + m.sum(1) - np.diag(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, np.nan)
    per = dict(zip(names, iou.tolist()))
    fg_inter = matrix[1:, 1:].sum()
    fg_union = matrix.sum() - matrix[0, 0]
    return {
        "miou_common": float(np.nanmean([per[n] for n in COMMON])),
        "miou_main": float(np.nanmean([per[n] for n in MAIN])),
        "foreground_iou": float(fg_inter / fg_union) if fg_union else float("nan"),
        "pixel_accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
        "iou": per,
        "pixels": int(matrix.sum()),
    }


def pck(pred, target, threshold: float = 0.1) -> tuple[int, int]:
    """(correct, total) keypoints within ``threshold`` x torso length (neck to mid-hip, or
    neck to the one hip present) of the target, over target points present (conf > 0).
    pred, target: (N, 18, 3) pixels. Persons without a neck and a hip are skipped."""
    pred, target = np.asarray(pred), np.asarray(target)
    correct = total = 0
    for p, t in zip(pred, target):
        hips = [t[i, :2] for i in (8, 11) if t[i, 2] > 0]
        if t[1, 2] <= 0 or not hips:
            continue
        torso = np.linalg.norm(np.mean(hips, axis=0) - t[1, :2])
        present = t[:, 2] > 0
        found = p[:, 2] > 0
        dist = np.linalg.norm(p[:, :2] - t[:, :2], axis=1)
        correct += int(np.sum(present & found & (dist <= threshold * torso)))
        total += int(np.sum(present))
    return correct, total
