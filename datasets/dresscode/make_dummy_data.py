"""Synthesise the Dress Code dummy data (official lower_body layout) for the builder tests.

Each person is a flat-colour figure drawn in the 384x512 keypoint frame together with its ATR label map
(all 18 classes occur across the six persons), rendered at a 3:4 photo size; the garment photo is the
person's bottom (pants, shorts, skirt or dress) alone on white; the keypoints are the drawn joints with
the quirks of the real files (candidate ids in the fourth value, missing points at (-1, -1) or (0, 0),
a point on the top border, a confidence above 1)::

    python -m tryon_datasets.dresscode.make_dummy_data [--out datasets/dresscode/dummy_data]
"""
import argparse
import json
import os

import numpy as np
from PIL import Image, ImageDraw

FRAME = (384, 512)  # (W, H) of the keypoint files
SKIN, HAIR = (224, 172, 140), (70, 45, 30)
COLOURS = {1: (40, 40, 90), 3: (20, 20, 20), 4: (200, 60, 60), 8: (90, 60, 20), 9: (30, 30, 30),
           10: (30, 30, 30), 16: (150, 90, 40), 17: (60, 150, 90)}
# person id -> (bottom, its colour, extra ATR classes, photo (W, H), garment photo (W, H), keypoint quirk)
PERSONS = {
    "000101": ("pants", (40, 70, 140), {1, 8, 16}, (288, 384), (240, 320), "missing_ear"),
    "000102": ("skirt", (120, 40, 110), {3, 17}, (192, 256), (192, 256), "zero_point"),
    "000103": ("shorts", (60, 110, 60), set(), (288, 384), (240, 320), "top_border"),
    "000201": ("dress", (170, 120, 30), set(), (288, 384), (240, 320), ""),
    "000202": ("pants", (90, 90, 90), {1}, (288, 384), (240, 320), "missing_ear"),
    "000203": ("skirt", (30, 100, 130), {16}, (288, 384), (240, 320), ""),
}
TRAIN = ["000101", "000102", "000103"]
TEST = ["000202", "000203", "000201"]  # the paired list is not sorted, the unpaired one is (as the real lists)
UNPAIRED = {"000201": "000203", "000202": "000201", "000203": "000202"}


def bottom_polygon(kind: str, cx: int) -> list[tuple[int, int]]:
    if kind == "pants":
        return [(cx - 46, 258), (cx + 46, 258), (cx + 44, 420), (cx + 6, 420), (cx, 300), (cx - 6, 420),
                (cx - 44, 420)]
    if kind == "shorts":
        return [(cx - 46, 258), (cx + 46, 258), (cx + 48, 330), (cx + 4, 330), (cx, 300), (cx - 4, 330),
                (cx - 48, 330)]
    if kind == "skirt":
        return [(cx - 46, 258), (cx + 46, 258), (cx + 62, 350), (cx - 62, 350)]
    return [(cx - 40, 108), (cx + 40, 108), (cx + 46, 258), (cx + 66, 380), (cx - 66, 380), (cx - 46, 258)]


def joints(cx: int) -> list[tuple[int, int]]:
    """OpenPose-18 order: nose, neck, right arm, left arm, right leg, left leg, eyes, ears."""
    return [(cx, 75), (cx, 112), (cx - 42, 118), (cx - 62, 185), (cx - 77, 245), (cx + 42, 118),
            (cx + 62, 185), (cx + 77, 245), (cx - 22, 265), (cx - 20, 365), (cx - 19, 465), (cx + 22, 265),
            (cx + 20, 365), (cx + 19, 465), (cx - 10, 62), (cx + 10, 62), (cx - 25, 68), (cx + 25, 68)]


def draw_person(bottom: str, colour, extras: set, cx: int) -> tuple[Image.Image, Image.Image]:
    """(RGB photo, ATR label map) in the keypoint frame."""
    rgb = Image.new("RGB", FRAME, (236, 236, 232))
    label = Image.new("L", FRAME, 0)
    k = joints(cx)

    def shape(kind, cls, xy, fill=None, **kw):
        for canvas, value in ((rgb, fill or COLOURS.get(cls, SKIN)), (label, cls)):
            getattr(ImageDraw.Draw(canvas), kind)(xy, fill=value, **kw)

    shape("polygon", 13, [(cx - 40, 262), (cx - 4, 262), (cx - 10, 470), (cx - 30, 470)])  # right leg
    shape("polygon", 12, [(cx + 4, 262), (cx + 40, 262), (cx + 30, 470), (cx + 10, 470)])  # left leg
    shape("ellipse", 10, (cx - 38, 466, cx - 4, 486))
    shape("ellipse", 9, (cx + 4, 466, cx + 38, 486))
    shape("line", 15, k[2:5], width=18)  # right arm
    shape("line", 14, k[5:8], width=18)  # left arm
    if bottom == "dress":
        shape("polygon", 7, bottom_polygon(bottom, cx), fill=colour)
    else:
        shape("polygon", 4, [(cx - 44, 108), (cx + 44, 108), (cx + 46, 262), (cx - 46, 262)])
        shape("polygon", 5 if bottom == "skirt" else 6, bottom_polygon(bottom, cx), fill=colour)
    shape("ellipse", 2, (cx - 29, 30, cx + 29, 84), fill=HAIR)
    shape("ellipse", 11, (cx - 24, 44, cx + 24, 104))
    shape("rectangle", 11, (cx - 9, 96, cx + 9, 110))  # neck
    boxes = {1: (cx - 32, 22, cx + 32, 42), 3: (cx - 18, 58, cx + 18, 68), 17: (cx - 22, 102, cx + 22, 118),
             8: (cx - 46, 256, cx + 46, 266), 16: (cx + 88, 228, cx + 118, 278)}  # hat, sunglasses, scarf, belt, bag
    for cls, box in boxes.items():
        if cls in extras:
            shape("rectangle", cls, box)
    return rgb, label


def draw_garment(bottom: str, colour, size: tuple[int, int]) -> Image.Image:
    """The bottom alone, centred on white, filling 80% of the photo's height or width."""
    poly = np.array(bottom_polygon(bottom, 0), float)
    lo, hi = poly.min(0), poly.max(0)
    scale = 0.8 * min(size[0] / (hi - lo)[0], size[1] / (hi - lo)[1])
    xy = (poly - (lo + hi) / 2) * scale + np.array(size) / 2
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.polygon([tuple(p) for p in xy.round()], fill=colour)
    (x0, y0), (x1, _) = xy[:2]  # the waist (neckline of the dress): a darker band
    draw.line([(x0 + 4, y0 + 4), (x1 - 4, y0 + 4)], fill=tuple(c // 2 for c in colour), width=3)
    return img


def keypoints(cx: int, quirk: str, rng: np.random.Generator) -> list[list[float]]:
    """[x, y, confidence, candidate id] rows in the 384x512 frame, with the real files' quirks."""
    rows, candidate = [], 0
    for i, (x, y) in enumerate(joints(cx)):
        candidate += 2 if i == 9 else 1  # a part with two candidates shifts the later ids
        rows.append([float(x), float(y), round(float(rng.uniform(0.3, 1.0)), 4), float(candidate - 1)])
    rows[1][2] = 1.0037  # OpenPose confidences can exceed 1
    if quirk == "missing_ear":
        rows[17] = [-1.0, -1.0, 0.0, -1.0]
    elif quirk == "zero_point":
        rows[16][:2] = [0.0, 0.0]
    elif quirk == "top_border":
        rows[0][1] = 0.0  # a head cropped at the top: kept
    return rows


def write(out: str) -> None:
    root = os.path.join(out, "lower_body")
    for sub in ("images", "label_maps", "keypoints"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    rng = np.random.default_rng(0)
    palette = np.random.default_rng(1).integers(0, 256, (256, 3), dtype=np.uint8)
    palette[0] = 0
    for pid, (bottom, colour, extras, photo_size, garment_size, quirk) in PERSONS.items():
        cx = 192 + int(rng.integers(-12, 13))
        rgb, label = draw_person(bottom, colour, extras, cx)
        rgb.resize(photo_size, Image.Resampling.NEAREST).save(os.path.join(root, "images", f"{pid}_0.jpg"), quality=90)
        label = label.resize(photo_size, Image.Resampling.NEAREST)
        label = Image.frombytes("P", label.size, label.tobytes())  # class ids as palette indices
        label.putpalette(palette.ravel().tolist())
        label.save(os.path.join(root, "label_maps", f"{pid}_4.png"), optimize=True)
        draw_garment(bottom, colour, garment_size).save(os.path.join(root, "images", f"{pid}_1.jpg"), quality=90)
        with open(os.path.join(root, "keypoints", f"{pid}_2.json"), "w") as f:
            json.dump({"keypoints": keypoints(cx, quirk, rng)}, f)
    lists = {"train_pairs.txt": [(p, p) for p in TRAIN], "test_pairs_paired.txt": [(p, p) for p in TEST],
             "test_pairs_unpaired.txt": sorted(UNPAIRED.items())}
    for name, pairs in lists.items():
        with open(os.path.join(root, name), "w") as f:
            f.writelines(f"{person}_0.jpg\t{cloth}_1.jpg\n" for person, cloth in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "dummy_data"))
    write(parser.parse_args().out)


if __name__ == "__main__":
    main()
