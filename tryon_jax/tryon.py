"""Batched try-on of a pair list from a folder in ACGPN layout; writes PNGs.

    python -m tryon_jax.tryon --acgpn-checkpoints=checkpoints/label2city \\
        --data=DIR --pairs=DIR/test_pairs.txt --out=OUT [--batch-size=8]

Writes OUT/results/<person>__<cloth>.png (the try-on image) and OUT/strips/<...>.png
(person | cloth | warped cloth | result).

With ``--photos PHOTO...`` the persons are people's own photos: they are prepared (pose,
parsing, framing: tryon_jax.person, as prepare_person does) into OUT/persons, and each
is tried on with every cloth of the pair list; ``--paste-back`` also writes OUT/pasted/, each
try-on put back into the person's own photo at its resolution (only the regions the model
replaced, with a soft edge; the rest of the photo untouched).
"""
import argparse
import concurrent.futures
import os
import sys

import jax
import jax.numpy as jnp
from tqdm import tqdm

from tryon_jax.acgpn import batches, inference
from tryon_jax.core import files, xla_cpu
from tryon_jax.data import loader_ops, samples
from tryon_jax.models.spec import ModelSpec
from tryon_jax.person import framing
from tryon_jax.person.photo import load_photo
from tryon_jax.weights import sources

OUTPUTS = ("fake_image", "warped", "fake_c", "changed")


@xla_cpu.jit(static_argnames=("spec", "dtype"))
def _tryon_images(variables, raw, keys, spec: ModelSpec, dtype=None):
    batch = batches.resize(loader_ops.prepare(raw), spec.height, spec.width)
    out = inference.tryon_graph(variables, batch, keys, dtype=dtype, spec=spec)
    return {"person": batch["image"], "cloth": batch["color"], **{k: out[k] for k in OUTPUTS}}


def pair_name(pair: samples.Pair) -> str:
    return f"{os.path.splitext(pair.person)[0]}__{os.path.splitext(pair.cloth)[0]}"


def run(variables: dict, data_root: str, pairs: list[samples.Pair], out_dir: str, batch_size: int = 8,
        seed: int = 0, split: str = "test", progress: bool = True, spec: ModelSpec = ModelSpec(),
        cloths: dict | None = None, dtype=None, paste_back: dict | None = None) -> list[str]:
    """Try every pair on; returns the result paths. Pair i's noise comes from fold_in(seed, i),
    so results do not depend on the batch size. The last batch is padded (one compilation).
    Images come out at the model's resolution (``spec``). ``cloths`` maps cloth names of the
    pairs to {"color", "edge"} arrays that replace the folder's (see samples.load_raw).
    ``dtype``: the networks' compute dtype (jnp.bfloat16, or None: float32). ``paste_back``
    maps person file names to their framing records (person.prepare.read_framing): those
    persons' results are also put back into their photos, OUT/pasted/<person>__<cloth>.png."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    base = jax.random.key(seed)
    written = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool, \
            tqdm(total=len(pairs), desc="try-on", unit="pair", disable=not progress) as bar:
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            examples = list(pool.map(lambda p: samples.load_raw(data_root, p, split, (cloths or {}).get(p.cloth)),
                                     chunk))
            examples += [examples[-1]] * (batch_size - len(examples))
            raw = samples.stack(examples, samples.RAW_KEYS)
            keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(start, start + batch_size))
            out = jax.device_get(_tryon_images(variables, raw, keys, spec, dtype))
            for i, pair in enumerate(chunk):
                name = pair_name(pair)
                result = files.to_uint8(out["fake_image"][i])
                path = os.path.join(out_dir, "results", name + ".png")
                files.save_png(path, result)
                strip = [files.to_uint8(out["person"][i]), files.to_uint8(out["cloth"][i]),
                         files.to_uint8(out["warped"][i]), result]
                files.save_png(os.path.join(out_dir, "strips", name + ".png"), files.grid([strip]))
                written.append(path)
                if pair.person in (paste_back or {}):
                    record = paste_back[pair.person]
                    photo = load_photo(record["photo"])
                    pasted = framing.paste_back(photo, result, out["changed"][i, ..., 0], record["matrix"])
                    files.save_png(os.path.join(out_dir, "pasted", name + ".png"), pasted)
            bar.update(len(chunk))
    return written


def persons_from_photos(photos, data_root, pairs, out, split="test", parser_weights=None,
                        spec: ModelSpec = ModelSpec()):
    """Prepares ``photos`` into OUT/persons (framed for the model's garment region, at its
    resolution when that is 256x192 or 512x384) with the cloths of ``pairs`` copied beside them;
    returns (that folder, every prepared person x every cloth)."""
    import shutil

    from tryon_jax.person.prepare import prepare_folder
    from tryon_jax.person.preprocessor import PersonPreprocessor
    root = os.path.join(out, "persons")
    size = (spec.height, spec.width) if (spec.height, spec.width) in framing.FRAME_SIZES else framing.FRAME_SIZES[0]
    persons, refused = prepare_folder(PersonPreprocessor(parser_weights, garment=spec.garment), photos, root,
                                      garment=spec.garment, size=size)
    if not persons:
        raise ValueError(f"no usable person photo ({len(refused)} refused; reasons in {root}/refused.txt)")
    cloths = list(dict.fromkeys(p.cloth for p in pairs))
    for cloth in cloths:
        stem = os.path.splitext(cloth)[0]
        for folder in ("color", "edge"):
            src = samples.find_file(data_root, f"{split}_{folder}", stem)
            os.makedirs(os.path.join(root, f"{split}_{folder}"), exist_ok=True)
            shutil.copy(src, os.path.join(root, f"{split}_{folder}", os.path.basename(src)))
    return root, [samples.Pair(p, c) for p in persons for c in cloths]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tryon_jax.tryon", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sources.add_arguments(parser)
    parser.add_argument("--data", required=True, help="folder in ACGPN layout (test_img, test_label, ...)")
    parser.add_argument("--pairs", help="pair list 'person cloth' per line (default: DATA/test_pairs.txt)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--split", default="test", help="folder prefix in DATA (test or train)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="compute dtype of the networks (bfloat16: faster on accelerators)")
    parser.add_argument("--musinsa-data-dir", help="TFDS data_dir of the musinsa dataset: try its garments on "
                        "the persons of --pairs instead of the listed cloths")
    parser.add_argument("--musinsa-category", default="top", choices=["top", "bottom"],
                        help="bottom needs a lower-body model (configs/dresscode_lower.py)")
    parser.add_argument("--musinsa-limit", type=int, default=8, help="garments (0: all)")
    parser.add_argument("--photos", nargs="+", help="person photos to prepare and use instead of the persons of "
                        "the pair list")
    parser.add_argument("--parser-weights", help="parser .npz for --photos (default: the committed weights)")
    parser.add_argument("--paste-back", action="store_true", help="with --photos: also put each try-on back "
                        "into the person's own photo, at its resolution (OUT/pasted)")
    args = parser.parse_args(argv)
    try:
        pairs = samples.read_pairs(args.pairs or os.path.join(args.data, f"{args.split}_pairs.txt"))
        variables, source, spec = sources.from_args(args)
        cloths = None
        if args.musinsa_data_dir:
            from tryon_jax.data.catalogue import musinsa_cloths
            cloths = musinsa_cloths(args.musinsa_data_dir, args.musinsa_category, args.musinsa_limit, spec.garment)
            pairs = [samples.Pair(p, c) for p in dict.fromkeys(p.person for p in pairs) for c in cloths]
        root, paste = args.data, None
        if args.paste_back and not args.photos:
            raise ValueError("--paste-back puts try-ons back into people's own photos: name them with --photos")
        if args.photos:
            root, pairs = persons_from_photos(args.photos, args.data, pairs, args.out, args.split, args.parser_weights,
                                              spec)
            if args.paste_back:
                from tryon_jax.person.prepare import read_framing
                paste = {p.person: read_framing(root, p.person, args.split) for p in pairs}
        print(f"weights: {source}; {len(pairs)} pairs; devices: {jax.devices()}", file=sys.stderr)
        written = run(variables, root, pairs, args.out, args.batch_size, args.seed, args.split, spec=spec,
                      cloths=cloths, dtype=None if args.dtype == "float32" else jnp.bfloat16, paste_back=paste)
    except (samples.DataError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} try-on images to {os.path.join(args.out, 'results')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
