"""python -m crawler --category 001 [--category 003 ...] --out DIR --max-items N [...]

Crawls Musinsa listings, product details and photos politely (robots.txt obeyed by default,
per-host --rate, Retry-After, a stop on bot challenges). Exit 0 when done, 3 when the crawl
was stopped (robots.txt disallows it, or a 403 challenge), 2 on bad arguments.
"""
import argparse
import asyncio
import logging
import sys

from crawler.client import CrawlStopped
from crawler.crawl import Options, crawl


def parse(argv) -> Options:
    d = Options(categories=[], out="")
    p = argparse.ArgumentParser(prog="python -m crawler", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--category", action="append", required=True, help="category code, e.g. 001 (tops), 003 (pants)")
    p.add_argument("--out", required=True)
    p.add_argument("--max-items", type=int, default=d.max_items, help="items per category")
    p.add_argument("--gender", default=d.gender, choices=["A", "M", "F"])
    p.add_argument("--sort", default=d.sort)
    p.add_argument("--page-size", type=int, default=d.page_size)
    p.add_argument("--concurrency", type=int, default=d.concurrency)
    p.add_argument("--rate", type=float, default=d.rate, help="requests per second per host (never exceeded)")
    for base in ("api", "detail", "image", "site"):
        p.add_argument(f"--{base}-base", default=getattr(d, f"{base}_base"))
    p.add_argument("--user-agent", default=d.user_agent)
    p.add_argument("--max-bytes", type=int, default=d.max_bytes, help="response size cap")
    p.add_argument("--timeout", type=float, default=d.timeout, help="seconds per request")
    p.add_argument("--retries", type=int, default=d.retries, help="retries of 429/5xx/timeouts")
    p.add_argument("--no-obey-robots", action="store_true", help="only with the site's permission")
    a = p.parse_args(argv)
    if not all(c.isdigit() and len(c) in (3, 6) for c in a.category):
        p.error(f"--category takes 3- or 6-digit codes, got {a.category}")
    if a.rate <= 0 or a.concurrency < 1 or a.max_items < 1 or not 1 <= a.page_size <= 100:
        p.error("--rate must be > 0, --concurrency and --max-items >= 1, --page-size 1..100")
    return Options(categories=a.category, out=a.out, max_items=a.max_items, gender=a.gender, sort=a.sort,
                   page_size=a.page_size, concurrency=a.concurrency, rate=a.rate, api_base=a.api_base,
                   detail_base=a.detail_base, image_base=a.image_base, site_base=a.site_base,
                   user_agent=a.user_agent, obey_robots=not a.no_obey_robots, max_bytes=a.max_bytes,
                   timeout=a.timeout, retries=a.retries)


def main(argv=None) -> int:
    opts = parse(argv)
    if not opts.obey_robots:
        logging.warning("--no-obey-robots: robots.txt is IGNORED for %s; use this only with the site's permission",
                        ", ".join(sorted({opts.api_base, opts.detail_base, opts.image_base, opts.site_base})))
    try:
        counts = asyncio.run(crawl(opts))
    except CrawlStopped as e:
        print(f"crawl stopped: {e}", file=sys.stderr)
        return 3
    print(f"done: {counts['items']} items, {counts['images']} images, {counts['errors']} errors in {opts.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
