"""People's prepared photos written in ACGPN's test layout (test_img, test_label, test_pose,
test_agnostic, test_body_mask), with an overlay per person to check by eye, persons.txt and
refused.txt. python -m tryon_jax.prepare_person is its command line."""
import dataclasses
import json
import os
import re
import sys

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from tryon_jax.core import files
from tryon_jax.models import garment as garment_lib
from tryon_jax.person import framing
from tryon_jax.person.parser import colour_labels
from tryon_jax.person.photo import load_photo
from tryon_jax.person.pose import openpose_json

# OpenPose-18 limbs drawn on the overlay.
LIMBS = ((0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
         (12, 13), (0, 14), (14, 16), (0, 15), (15, 17))


def agnostic(image: np.ndarray, label: np.ndarray, garment: str = "upper") -> np.ndarray:
    """The person with the regions ACGPN regenerates greyed out (for tops: clothes, dress, arms)."""
    return np.where(np.isin(label, garment_lib.region(garment).changed)[..., None], 128, image).astype(np.uint8)


def enlarged(person, photo: np.ndarray, size: tuple[int, int]):
    """The person at a larger frame ``size`` (512x384): the photo framed again at that size,
    labels by nearest neighbour, keypoints scaled (the parser and pose work at 256x192)."""
    f = size[0] // person.image.shape[0]
    keypoints = np.where(person.keypoints[:, 2:] > 0, person.keypoints * (f, f, 1), 0).astype(np.float32)
    return dataclasses.replace(person, image=framing.frame(photo, person.framing, size),
                               label=person.label.repeat(f, 0).repeat(f, 1), keypoints=keypoints)


def overlay(image: np.ndarray, label: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """photo | labels blended over it with the skeleton, enlarged 2x."""
    blend = (0.45 * image + 0.55 * colour_labels(label)).astype(np.uint8)
    blend = cv2.resize(blend, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    pts = {i: (int(round(2 * x + 0.5)), int(round(2 * y + 0.5))) for i, (x, y, c) in enumerate(keypoints) if c > 0}
    for a, b in LIMBS:
        if a in pts and b in pts:
            cv2.line(blend, pts[a], pts[b], (255, 255, 255), 2, cv2.LINE_AA)
    for p in pts.values():
        cv2.circle(blend, p, 3, (255, 0, 0), -1, cv2.LINE_AA)
    left = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    return np.concatenate([left, blend], axis=1)


def person_name(path: str, taken: set) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.splitext(os.path.basename(path))[0]) or "person"
    name, i = stem, 1
    while name in taken:
        i += 1
        name = f"{stem}-{i}"
    taken.add(name)
    return name


def write_person(out: str, name: str, person, split: str = "test", photo: str | None = None,
                 garment: str = "upper") -> None:
    """Every file of one person, each written atomically; {split}_framing/<name>.json keeps the
    photo's path (``photo``), size and framing map, to put a try-on back into the photo."""
    with files.atomic_write(os.path.join(out, f"{split}_img", name + ".jpg")) as f:
        Image.fromarray(person.image).save(f, format="JPEG", quality=95)
    files.save_png(os.path.join(out, f"{split}_label", name + ".png"), person.label)
    with files.atomic_write(os.path.join(out, f"{split}_pose", name + "_keypoints.json"), "w") as f:
        json.dump(openpose_json(person.keypoints), f)
    files.save_png(os.path.join(out, f"{split}_agnostic", name + ".png"), agnostic(person.image, person.label, garment))
    files.save_png(os.path.join(out, f"{split}_body_mask", name + ".png"), ((person.label > 0) * 255).astype(np.uint8))
    files.save_png(os.path.join(out, "overlay", name + ".png"), overlay(person.image, person.label, person.keypoints))
    with files.atomic_write(os.path.join(out, f"{split}_framing", name + ".json"), "w") as f:
        json.dump({"photo": photo, "photo_size": list(person.photo_size), "matrix": person.framing.tolist()}, f)


def read_framing(root: str, person: str, split: str = "test") -> dict:
    """The framing record write_person kept for ``person`` (a file name of {split}_img)."""
    path = os.path.join(root, f"{split}_framing", os.path.splitext(person)[0] + ".json")
    try:
        with open(path) as f:
            record = json.load(f)
        return {**record, "matrix": np.asarray(record["matrix"], np.float64).reshape(2, 3)}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no framing record (prepare the photo again with this version)") from None
    except (ValueError, KeyError) as e:
        raise ValueError(f"{path}: not a framing record ({e})") from None


def prepare_folder(pre, photos: list[str], out: str, batch_size: int = 16, garment: str = "upper",
                   size: tuple[int, int] = (framing.HEIGHT, framing.WIDTH)) -> tuple[list[str], list[tuple]]:
    """Prepares ``photos`` into ``out`` (ACGPN test layout at ``size``, persons.txt, refused.txt)
    with a progress bar; returns (person file names written, [(photo, reason) refused])."""
    if tuple(size) not in framing.FRAME_SIZES:
        raise ValueError(f"frame size {size[0]}x{size[1]}: expected one of "
                         f"{', '.join(f'{h}x{w}' for h, w in framing.FRAME_SIZES)}")
    taken, written, refused = set(), [], []
    with tqdm(total=len(photos), desc="prepare", unit="photo") as bar:
        for start in range(0, len(photos), batch_size):
            chunk = photos[start:start + batch_size]
            for path, result in zip(chunk, pre.prepare_batch(chunk, chunk)):
                if isinstance(result, Exception):
                    refused.append((path, str(result)))
                    tqdm.write(f"refused: {result}", file=sys.stderr)
                else:
                    name = person_name(path, taken)
                    if tuple(size) != result.image.shape[:2]:
                        result = enlarged(result, load_photo(path, path, pre.max_pixels), tuple(size))
                    write_person(out, name, result, photo=os.fspath(path), garment=garment)
                    written.append(name + ".jpg")
            bar.update(len(chunk))
    os.makedirs(out, exist_ok=True)
    with files.atomic_write(os.path.join(out, "persons.txt"), "w") as f:
        f.writelines(f"{n}\n" for n in written)
    with files.atomic_write(os.path.join(out, "refused.txt"), "w") as f:
        f.writelines(f"{p}\t{reason}\n" for p, reason in refused)
    return written, refused
