"""The evaluation report: a Markdown table and a PNG plot of each metric over steps (PIL only)."""
import json
import os
import sys
import textwrap

import numpy as np
from PIL import Image, ImageDraw

from tryon_jax.core import files

METRICS = ("ssim", "ms_ssim", "is", "fid")
SPLITS = ("all", "easy", "medium", "hard")
COLORS = {"all": (20, 20, 20), "easy": (40, 140, 60), "medium": (220, 150, 20), "hard": (200, 40, 40)}


def _fmt(v):
    return "-" if v is None else f"{v:.4f}"


def markdown(results: list[dict]) -> str:
    results = sorted(results, key=lambda r: r["step"])
    lines = ["# Evaluation", "",
             "Paired setting (the person wears the cloth): SSIM (pytorch-ssim) and MS-SSIM (pytorch_msssim).",
             "Unpaired setting (official pairs): Inception Score (sbarratt protocol) and FID (pool3, float64).",
             "Each as all / easy / medium / hard (ACGPN's official difficulty lists).", ""]
    header = "| step | " + " | ".join(f"{m} {s}" for m in METRICS for s in SPLITS) + " |"
    lines += [header, "|" + "---|" * (1 + len(METRICS) * len(SPLITS))]
    for r in results:
        lines.append(f"| {r['step']} | " + " | ".join(_fmt(r[m].get(s)) for m in METRICS for s in SPLITS) + " |")
    if results:
        last = results[-1]
        lines += ["", "Pairs per split (paired / unpaired): " + ", ".join(
            f"{s} {last['count_paired'].get(s) or 0} / {last['count_unpaired'].get(s) or 0}" for s in SPLITS)]
        notes = sorted({r["unpaired_note"] for r in results if r.get("unpaired_note")})
        lines += [f"IS and FID: {note}." for note in notes]
    return "\n".join(lines) + "\n"


def read(out_dir: str) -> str:
    """The report.md written in ``out_dir``."""
    with open(os.path.join(out_dir, "report.md")) as f:
        return f.read()


def plot(results: list[dict], width: int = 360, height: int = 240) -> np.ndarray:
    """One panel per metric, a line per split, steps on x."""
    results = sorted(results, key=lambda r: r["step"])
    panels = []
    for metric in METRICS:
        img = Image.new("RGB", (width, height), "white")
        d = ImageDraw.Draw(img)
        left, top, right, bottom = 48, 24, width - 12, height - 28
        d.rectangle((left, top, right, bottom), outline=(120, 120, 120))
        d.text((left, 4), metric.upper(), fill=(0, 0, 0))
        steps = [r["step"] for r in results]
        values = [v for r in results for v in r[metric].values() if v is not None]
        note = next((r["unpaired_note"] for r in results if r.get("unpaired_note")), None)
        if not values and note and metric in ("is", "fid"):
            for k, line in enumerate(textwrap.wrap(note, 40)):
                d.text((left + 8, top + 12 + 12 * k), line, fill=(120, 120, 120))
        if values and steps:
            lo, hi = min(values), max(values)
            hi = hi if hi > lo else lo + 1e-6
            s0, s1 = min(steps), max(steps) if max(steps) > min(steps) else min(steps) + 1

            def xy(step, v):
                return (left + (right - left) * (step - s0) / (s1 - s0), bottom - (bottom - top) * (v - lo) / (hi - lo))
            d.text((2, top), f"{hi:.3g}", fill=(0, 0, 0))
            d.text((2, bottom - 10), f"{lo:.3g}", fill=(0, 0, 0))
            d.text((left, bottom + 4), str(s0), fill=(0, 0, 0))
            d.text((right - 40, bottom + 4), str(max(steps)), fill=(0, 0, 0))
            for k, split in enumerate(SPLITS):
                pts = [xy(r["step"], r[metric][split]) for r in results if r[metric].get(split) is not None]
                if len(pts) > 1:
                    d.line(pts, fill=COLORS[split], width=2)
                for p in pts:
                    d.ellipse((p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2), fill=COLORS[split])
                d.text((right - 60, top + 4 + 11 * k), split, fill=COLORS[split])
        panels.append(np.asarray(img))
    return files.grid([panels[:2], panels[2:]])


def write(results: list[dict], out_dir: str) -> None:
    with files.atomic_write(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(markdown(results))
    files.save_png(os.path.join(out_dir, "metrics.png"), plot(results))


def save_json_and_markdown(out_dir: str, stem: str, report: dict, text: str) -> None:
    """OUT/<stem>.json (the report) and OUT/<stem>.md (its table), each written atomically."""
    with files.atomic_write(os.path.join(out_dir, stem + ".json"), "w") as f:
        json.dump(report, f, indent=1)
    with files.atomic_write(os.path.join(out_dir, stem + ".md"), "w") as f:
        f.write(text)


def write_report(compute, to_markdown, out_dir: str, stem: str) -> int:
    """A report command's ending: ``compute()``'s report saved by ``save_json_and_markdown`` and
    its table printed (exit 0), or the bad input's message on stderr (exit 2)."""
    try:
        report = compute()
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = to_markdown(report)
    save_json_and_markdown(out_dir, stem, report, text)
    print(text)
    return 0
