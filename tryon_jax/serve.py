"""The try-on service: the exported model, the Musinsa catalogue and the people's photo store
behind a JSON API and a web page (aiohttp).

    python -m tryon_jax.serve --catalogue DIR --store DIR [--export DIR] [--host 127.0.0.1 --port 8080]

--export is a folder written by ``python -m tryon_jax.export`` (no model or training code is
needed to serve it); without it the shipped model (or --model DIR) is exported once into
STORE/exports/ and served from there. --catalogue is a crawl output folder (python -m crawler
--out) or a TFDS data_dir with the musinsa dataset; --store the photo store's folder (created
if missing).

API (JSON errors are {"error": text} with the HTTP status):
  GET    /api/session               {"csrf_token", "consent_text", "max_upload_bytes"}
  GET    /api/photos                my photos
  POST   /api/photos                multipart: photo (file), consent=yes -> 201 {"photo"}
  GET    /api/photos/{id}/image     the framed person (PNG)
  DELETE /api/photos/{id}           the photo, its derived files and cached results, for good
  GET    /api/garments[?category=top|bottom]   each with "tryon": false and "tryon_refusal" where no
                                    model can try it on (bottoms without --bottoms-export / --bottoms-model,
                                    products with no photo of the garment alone); "not_tryable": products
                                    per reason (no_garment_photo, bad_photo, ...)
  GET    /api/garments/{id}/image   the garment framed like VITON (PNG)
  POST   /api/tryon                 {"photo_id", "garment_id", "view": "photo" (default) | "framed"} ->
                                    image/png: the try-on put back into the photo at its resolution, or
                                    the model's 256x192 picture (X-Tryon-View: which one, X-Tryon-Cache:
                                    hit|miss); 422 with the reason for a garment it cannot try on, or
                                    a photo that does not show what the garment needs (bottoms: the
                                    legs down to the feet)
  GET    /healthz

Security, batching and caching: tryon_jax.serving.app.
"""
import argparse
import ipaddress
import json
import logging
import os
import sys

from aiohttp import web

from tryon_jax.serving.app import Settings, build, log


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tryon_jax.serve", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", help="folder from python -m tryon_jax.export (default: the shipped model, exported "
                    "once into STORE/exports/)")
    ap.add_argument("--model", help="without --export: this model folder instead of the shipped one")
    ap.add_argument("--bottoms-export", help="an export of a lower-body model (configs/dresscode_lower.py): bottoms "
                    "are tried on with it (persons framed whole, on first use); without it bottoms are refused")
    ap.add_argument("--bottoms-model", help="without --bottoms-export: a lower-body model folder, exported once into "
                    "STORE/exports/")
    ap.add_argument("--catalogue", required=True, help="crawl output folder or TFDS data_dir with musinsa")
    ap.add_argument("--store", required=True, help="the photo store's folder")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--max-batch", type=int, default=Settings.max_batch)
    ap.add_argument("--max-wait-ms", type=float, default=Settings.max_wait_ms)
    ap.add_argument("--max-upload-mb", type=float, default=Settings.max_upload_bytes / (1 << 20))
    ap.add_argument("--rate", type=float, default=Settings.rate_per_s, help="requests/s per client (0: no limit)")
    ap.add_argument("--burst", type=int, default=Settings.burst)
    ap.add_argument("--timeout", type=float, default=Settings.timeout_s, help="seconds per request")
    ap.add_argument("--no-cache", action="store_true", help="do not keep try-on results")
    ap.add_argument("--retention-days", type=float, default=30.0, help="photos older than this are deleted (0: keep)")
    ap.add_argument("--max-photos", type=int, default=20, help="photos per owner")
    ap.add_argument("--parser-weights", help="parser .npz (default: the committed weights)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    settings = Settings(args.max_batch, args.max_wait_ms, int(args.max_upload_mb * (1 << 20)), args.rate, args.burst,
                        args.timeout, not args.no_cache)
    try:
        export_dir = args.export
        if not export_dir:
            from tryon_jax.export import model_export  # model code only here, to write the artefact once
            export_dir = model_export(os.path.join(args.store, "exports"), args.model)
        bottoms = args.bottoms_export
        if not bottoms and args.bottoms_model:
            from tryon_jax.export import model_export
            bottoms = model_export(os.path.join(args.store, "exports"), args.bottoms_model)
        service = build(export_dir, args.catalogue, args.store, settings, args.parser_weights,
                        args.retention_days, args.max_photos, bottoms_export=bottoms)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not _loopback(args.host):
        log.warning(json.dumps({"event": "warning", "message": f"binding {args.host}: reachable from other machines; "
                                "put TLS in front of it (cookies are Secure only over https)"}))
    log.info(json.dumps({"event": "start", "url": f"http://{args.host}:{args.port}", "model": service.model.id,
                         "models": {r: m.id for r, m in service.models.items()},
                         "garments": len(service.catalogue.garments),
                         "skipped_garments": len(service.catalogue.skipped)}))
    web.run_app(service.app(), host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
