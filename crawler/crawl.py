"""One crawl: listing pages of each category -> product details -> photos, into a Store.

Items are de-duplicated by goodsNo across pages and categories (ads and ranking drift repeat
goods), finished items are skipped on resume, and an item that fails for good goes to
failed.jsonl with the reason. CrawlStopped (robots.txt, a 403 challenge) ends the crawl.
"""
import asyncio
import dataclasses
import hashlib
import io
import urllib.parse

import aiohttp
from PIL import Image
from tqdm import tqdm

from crawler import catalogue
from crawler.client import Client, FetchError
from crawler.store import Store

KIND = {"001": "top", "003": "bottom"}


@dataclasses.dataclass
class Options:
    categories: list
    out: str
    max_items: int = 100
    gender: str = "A"
    sort: str = "POPULAR"
    page_size: int = 60
    concurrency: int = 4
    rate: float = 1.0
    api_base: str = "https://api.musinsa.com"
    detail_base: str = "https://goods-detail.musinsa.com"
    image_base: str = "https://image.msscdn.net"
    site_base: str = "https://www.musinsa.com"
    user_agent: str = "TryOnResearchBot/0.1 (+https://github.com/tryon-jax; research crawler)"
    obey_robots: bool = True
    retries: int = 4
    backoff: float = 1.0
    timeout: float = 30.0
    max_bytes: int = 20 << 20
    progress: bool = True


def verify_image(data: bytes, url: str) -> tuple[int, int]:
    """Decodes the whole image (catches truncated files and HTML served as JPEG)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.size
    except (OSError, SyntaxError, ValueError) as e:
        raise FetchError(f"{url}: not a decodable image ({e})") from e


class Crawl:
    def __init__(self, opts: Options, client: Client, store: Store):
        self.opts, self.client, self.store = opts, client, store
        self.bar = tqdm(desc="crawl", unit="item", disable=not opts.progress)
        self.counts = {"items": len(store.finished), "images": 0, "errors": 0}
        self.bar.update(len(store.finished))

    def waiting(self, seconds: float, why: str) -> None:
        self.bar.set_postfix(**self.counts, wait=f"{seconds:.1f}s ({why})")

    async def candidates(self) -> list[tuple[str, dict]]:
        """Listing entries in order, de-duplicated across pages and categories, up to max_items
        per category."""
        seen, out = set(), []
        for category in self.opts.categories:
            page, taken = 1, 0
            while taken < self.opts.max_items:
                query = urllib.parse.urlencode({"category": category, "gf": self.opts.gender,
                                                "sortCode": self.opts.sort, "page": page,
                                                "size": self.opts.page_size, "caller": "CATEGORY"})
                url = f"{self.opts.api_base}{catalogue.LISTING_PATH}?{query}"
                try:
                    status, _, body = await self.client.get(url)
                    if status != 200:
                        raise FetchError(f"{url}: HTTP {status}")
                    entries, has_next = catalogue.parse_listing(body, url)
                except (FetchError, catalogue.SchemaError) as e:
                    self.counts["errors"] += 1
                    self.bar.write(f"listing stopped for category {category}: {e}")
                    break
                for entry in entries:
                    if entry["goodsNo"] not in seen and taken < self.opts.max_items:
                        seen.add(entry["goodsNo"])
                        out.append((category, entry))
                        taken += 1
                if not has_next:
                    break
                page += 1
        return out

    async def item(self, category: str, entry: dict) -> None:
        goods_no = entry["goodsNo"]
        url = self.opts.detail_base + catalogue.DETAIL_PATH.format(goods_no=goods_no)
        try:
            status, _, body = await self.client.get(url)
            if status != 200:
                raise FetchError(f"{url}: HTTP {status}")
            detail = catalogue.parse_detail(body, url)
            images = []
            for index, path in enumerate(detail.pop("image_paths")):
                try:
                    images.append(await self.image(goods_no, index, path))
                except FetchError:
                    if index == 0:
                        raise  # the main photo is the item
        except (FetchError, catalogue.SchemaError) as e:
            self.counts["errors"] += 1
            self.store.add_failed(goods_no, str(e))
            return
        record = {"goodsNo": goods_no, "category": KIND.get(category[:3], category[:3]),
                  "category_code": category, **{k: v for k, v in detail.items() if k != "goodsNo"},
                  "listing_gender": entry.get("gender"), "images": images}
        self.store.add_item(record)
        self.counts["items"] += 1
        self.bar.update(1)
        self.bar.set_postfix(**self.counts)

    async def image(self, goods_no: int, index: int, path: str) -> dict:
        last = None
        for candidate in catalogue.image_candidates(path):
            url = self.opts.image_base + candidate
            status, _, body = await self.client.get(url)
            if status != 200:
                last = FetchError(f"{url}: HTTP {status}")
                continue
            width, height = await asyncio.to_thread(verify_image, body, url)  # decoding off the event loop
            name = f"{index:02d}_{candidate.rsplit('/', 1)[-1]}"
            file = self.store.write_image(goods_no, name, body)
            self.counts["images"] += 1
            return {"file": file, "url": url, "sha256": hashlib.sha256(body).hexdigest(),
                    "width": width, "height": height, "large": candidate != path}
        raise last

    async def run(self) -> dict:
        try:
            candidates = await self.candidates()
            self.bar.total = len(candidates)
            todo = [(c, e) for c, e in candidates
                    if e["goodsNo"] not in self.store.finished and e["goodsNo"] not in self.store.failed]
            await asyncio.gather(*(self.item(c, e) for c, e in todo))
        finally:
            self.bar.close()
        return dict(self.counts)


async def crawl(opts: Options) -> dict:
    store = Store(opts.out)
    async with aiohttp.ClientSession() as session:
        bases = (opts.api_base, opts.detail_base, opts.image_base, opts.site_base)
        client = Client(session, bases, opts.user_agent, rate=opts.rate, concurrency=opts.concurrency,
                        max_bytes=opts.max_bytes, timeout=opts.timeout, retries=opts.retries, backoff=opts.backoff,
                        obey_robots=opts.obey_robots)
        run = Crawl(opts, client, store)
        client.on_wait = run.waiting
        return await run.run()
