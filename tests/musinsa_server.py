"""A local imitation of Musinsa's four hosts on one loopback port, from tests/fixtures/musinsa.

Same path layout as the real service: /robots.txt, /api2/dp/v1/plp/goods, /api2/goods/{no},
/images/... Goods without a detail fixture get one made from a template (their photo is one of
the 12 fixture photos, by goodsNo). ``faults`` maps a path (or '*') to a list of callables
(request, count) -> Response or None, so tests inject 429s, 5xx, challenges, bad bodies.
Every request is logged as (monotonic time, path_qs, user agent).
"""
import asyncio
import json
import threading
import time
from pathlib import Path

from aiohttp import web

FIXTURES = Path(__file__).parent / "fixtures" / "musinsa"
ALLOW_ALL = "User-agent: *\nAllow: /\n"


def _load(path):
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))


class MusinsaServer:
    def __init__(self, robots: str = ALLOW_ALL, faults: dict | None = None, synthetic_total: int = 0):
        """``synthetic_total`` > 0: listings of any category are generated (that many goods per
        category, numbered from 5_000_000) instead of the fixture pages (benchmarks)."""
        self.robots, self.faults, self.log = robots, faults or {}, []
        self.synthetic_total = synthetic_total
        self.count = 0
        goods_map = _load("images/goods_map.json")
        self.photos = {g["goodsNo"]: g for g in goods_map}
        self.photo_files = sorted(p.name for p in (FIXTURES / "images").glob("*_500.jpg"))
        self.pages = {("001", 1): _load("plp/plp_001_A_POPULAR_page1_size20.json"),
                      ("001", 2): _load("plp/plp_001_A_POPULAR_page2_size20.json"),
                      ("003", 1): _load("plp/plp_003_A_POPULAR_page1_size20.json")}
        self.pages[("001", 2)]["data"]["pagination"]["hasNext"] = False
        self.pages[("003", 1)]["data"]["pagination"]["hasNext"] = False
        self.empty = _load("plp/plp_empty_unknown_category.json")

    # --- content -------------------------------------------------------------------------
    def listing(self, request):
        key = (request.query.get("category", "")[:3], int(request.query.get("page", "1")))
        if self.synthetic_total:
            return web.json_response(self.synthetic_page(key, int(request.query.get("size", "60"))))
        return web.json_response(self.pages.get(key, self.empty))

    def synthetic_page(self, key, size: int) -> dict:
        category, page = key
        first = 5_000_000 + int(category) * 100_000 + (page - 1) * size
        count = max(0, min(size, self.synthetic_total - (page - 1) * size))
        template = self.pages[("001", 1)]["data"]["list"][0]
        entries = [{**template, "goodsNo": first + i, "goodsName": f"Synthetic good {first + i}"} for i in range(count)]
        pages = -(-self.synthetic_total // size)
        return {"data": {"list": entries, "pagination": {"page": page, "size": size, "totalCount": self.synthetic_total,
                                                         "totalPages": pages, "hasNext": page < pages}},
                "meta": {"result": "SUCCESS"}}

    def photo_path(self, goods_no: int) -> str:
        known = self.photos.get(goods_no)
        return known["url_path"] if known else f"/images/goods_img/20250101/{goods_no}/{goods_no}_1_500.jpg"

    def detail(self, goods_no: int):
        path = FIXTURES / "detail" / f"goods_{goods_no}.json"
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        body = _load("detail/goods_4117865.json")
        body["data"].update(goodsNo=goods_no, goodsNm=f"Synthetic good {goods_no}",
                            thumbnailImageUrl=self.photo_path(goods_no), goodsImages=[])
        return body

    def image(self, path: str):
        parts = path.split("/")
        goods_no = int(parts[-2]) if len(parts) > 2 and parts[-2].isdigit() else 0
        known = self.photos.get(goods_no)
        if path.endswith("_big.jpg"):
            if not (known and known["big_available"]):
                return web.Response(status=404, text="not found")
            path = path[: -len("_big.jpg")] + "_500.jpg"
        if path != self.photo_path(goods_no):
            return web.Response(status=404, text="not found")
        name = known["fixture_image"] if known else self.photo_files[goods_no % len(self.photo_files)]
        return web.Response(body=(FIXTURES / "images" / name).read_bytes(), content_type="image/jpeg")

    async def handle(self, request):
        self.count += 1
        self.log.append((time.monotonic(), request.path_qs, request.headers.get("User-Agent")))
        for key in (request.path, "*"):
            for fault in self.faults.get(key, []):
                response = fault(request, self.count)
                if response is not None:
                    return await response if asyncio.iscoroutine(response) else response
        path = request.path
        if path == "/robots.txt":
            return web.Response(text=self.robots)
        if path == "/api2/dp/v1/plp/goods":
            return self.listing(request)
        if path.startswith("/api2/goods/") and path.rsplit("/", 1)[-1].isdigit():
            body = self.detail(int(path.rsplit("/", 1)[-1]))
            return web.json_response(body)
        if path.startswith(("/images/", "/thumbnails/")):
            return self.image(path)
        return web.json_response(_load("detail/error_404_goods_not_found.json"), status=404)

    # --- running in a thread ---------------------------------------------------------------
    def __enter__(self):
        ready = threading.Event()

        def serve():
            self.loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_route("GET", "/{tail:.*}", self.handle)
            self.runner = web.AppRunner(app)
            self.loop.run_until_complete(self.runner.setup())
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            self.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self.runner.cleanup())

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("imitation server did not start")
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def args(self, out, *extra):
        bases = [f"--{b}-base={self.base}" for b in ("api", "detail", "image", "site")]
        return ["--out", str(out), *bases, *extra]

    def paths(self):
        return [p for _, p, _ in self.log]
