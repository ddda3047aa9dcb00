"""Person photos -> ACGPN's test layout, ready for python -m tryon_jax.tryon.

    python -m tryon_jax.prepare_person PHOTO... --out DIR [--garment upper|lower|dresses] [--size 512x384]
        [--parser-weights parser.npz]

For each photo NAME.EXT that shows one person from the head to at least the hips (for
``--garment lower`` or ``dresses``: to the feet), writes DIR/test_img/NAME.jpg (framed like
VITON, 256x192; for bottoms and dresses the whole person framed like Dress Code),
DIR/test_label/NAME.png (ACGPN's 14 labels), DIR/test_pose/NAME_keypoints.json (OpenPose-18,
VITON's JSON), the cloth-agnostic inputs DIR/test_agnostic/NAME.png (the person with what
ACGPN regenerates greyed out: clothes and arms for tops, pants, skirts and legs for bottoms)
and DIR/test_body_mask/NAME.png, and DIR/overlay/NAME.png (labels and skeleton over the
photo, to check by eye). DIR/persons.txt lists the persons written; refused photos
are listed with the reason in DIR/refused.txt and on stderr (exit status 1).
Pose: BlazePose (vendored, offline); parsing: the committed parser weights.
"""
import argparse
import os
import sys

from tryon_jax.models.garment import REGIONS
from tryon_jax.person.framing import FRAME_SIZES
from tryon_jax.person.prepare import prepare_folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tryon_jax.prepare_person", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="+", help="person photos (JPEG, PNG, WebP, BMP, TIFF, GIF)")
    parser.add_argument("--out", required=True, help="output folder (ACGPN test layout)")
    parser.add_argument("--parser-weights", help="parser .npz (default: the committed weights)")
    parser.add_argument("--pose-models", help="folder with BlazePose's two .tflite files (default: vendored)")
    parser.add_argument("--garment", default="upper", choices=sorted(REGIONS),
                        help="what will be tried on: upper (tops, VITON framing), lower (bottoms) or dresses "
                             "(full body, Dress Code framing)")
    parser.add_argument("--size", default="256x192", choices=[f"{h}x{w}" for h, w in FRAME_SIZES],
                        help="the frame written (the model's resolution)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--min-torso-px", type=float, default=48.0,
                        help="refuse people whose neck-to-hip length in the photo is shorter")
    args = parser.parse_args(argv)
    from tryon_jax.person.preprocessor import PersonPreprocessor
    try:
        pre = PersonPreprocessor(args.parser_weights, args.pose_models, args.min_torso_px, batch_size=args.batch_size,
                                 garment=args.garment)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = tuple(int(v) for v in args.size.split("x"))
    written, refused = prepare_folder(pre, args.photos, args.out, args.batch_size, args.garment, size)
    print(f"wrote {len(written)} persons to {args.out} (overlays in {os.path.join(args.out, 'overlay')}); "
          f"refused {len(refused)}", file=sys.stderr)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
