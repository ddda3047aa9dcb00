"""Try-on service under load on loopback: p50/p99 latency and throughput of try-on requests
from concurrent clients (each its own owner with its own photo), with and without
micro-batching; every response is checked to be exactly its own pair's image. Prints JSON.

    python benchmarks/serve.py [--export DIR] [--requests 200] [--max-batches 1,8] [--max-wait-ms 5]

Without --export the demo-sized model (configs/demo.py's 64x48 spec, fresh initialisation) is
exported to a temporary folder; the catalogue is the 12 shipped Musinsa fixture garments and
the owners are the 16 shipped VITON photos.
"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import report  # noqa: E402
from tests import serve_fixtures as sf  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", help="folder from python -m tryon_jax.export (default: the demo-sized model)")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--max-batches", default="1,8")
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    args = ap.parse_args()
    from tryon_jax.data.catalogue import Catalogue
    from tryon_jax.person.preprocessor import PersonPreprocessor
    with tempfile.TemporaryDirectory() as tmp:
        export_dir = args.export or sf.small_export(os.path.join(tmp, "export"))
        catalogue = Catalogue.load(sf.crawl_catalogue(os.path.join(tmp, "crawl")))
        preprocessor = PersonPreprocessor()

        def run_all():
            figures = sf.load_scenario(export_dir, catalogue, preprocessor, os.path.join(tmp, "store"), args.requests,
                                       [int(b) for b in args.max_batches.split(",")], args.max_wait_ms)
            return [{"name": k, **{f: round(v, 4) if isinstance(v, float) else v for f, v in r.items()}}
                    for k, r in figures.items()]

        out = report("serve", run_all, export=args.export or "demo-sized model, fresh init",
                     requests=args.requests, max_wait_ms=args.max_wait_ms)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
