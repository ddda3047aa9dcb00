"""Crawler throughput against the local imitation server (loopback): a crawl of N items at a
high --rate, the achieved request rate against the allowed one (never above it), CPU time per
item, peak RSS. Prints JSON.

    python benchmarks/crawler.py [--items 500] [--rate 200] [--concurrency 8]
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import peak_rss_mb  # noqa: E402
from crawler.__main__ import main as crawl_main  # noqa: E402
from tests.musinsa_server import MusinsaServer  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out, MusinsaServer(synthetic_total=args.items) as server:
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        code = crawl_main(server.args(out, "--category", "001", "--max-items", str(args.items), "--page-size", "100",
                                      "--rate", str(args.rate), "--concurrency", str(args.concurrency)))
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        with open(os.path.join(out, "items.jsonl")) as f:
            items = sum(1 for _ in f)
    starts = sorted(t for t, _, _ in server.log)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    achieved = (len(starts) - 1) / (starts[-1] - starts[0])
    window = 1.0  # the most requests the server saw in any 1 s window
    most, j = 0, 0
    for i, t in enumerate(starts):
        while starts[j] < t - window:
            j += 1
        most = max(most, i - j + 1)
    print(json.dumps({
        "benchmark": "crawler", "exit_code": code, "items": items, "requests": len(starts),
        "allowed_rate": args.rate, "achieved_rate": round(achieved, 2),
        "achieved_over_allowed": round(achieved / args.rate, 3), "min_gap_s_at_server": round(min(gaps), 5),
        "most_requests_in_any_1s_at_server": most,
        "wall_s": round(wall, 2), "cpu_ms_per_item": round(1000 * cpu / max(items, 1), 2),
        "note": "server and crawler share this process's CPU time", "peak_rss_mb": peak_rss_mb(),
    }, indent=1))


if __name__ == "__main__":
    main()
