"""What the service tests and benchmarks/serve.py need: a small exported model, a catalogue
from the shipped Musinsa fixtures, the service running on loopback, and a load generator."""
import asyncio
import json
import os
import shutil
import statistics
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUSINSA = os.path.join(ROOT, "tests", "fixtures", "musinsa")
PHOTOS = os.path.join(ROOT, "data", "viton_acgpn_sample", "test_img")
SMALL_SPEC = dict(height=64, width=48, ngf=8, ndf=8)  # configs/demo.py's model


def small_export(out: str, seed: int = 0) -> str:
    """The demo-sized model (fresh ACGPN initialisation) exported for the CPU."""
    from tryon_jax import export
    from tryon_jax.acgpn import train_step
    from tryon_jax.models.spec import ModelSpec
    spec = ModelSpec(**SMALL_SPEC)
    variables = train_step.init_variables(seed, spec)
    return export.write({k: variables[k] for k in train_step.GENERATORS}, out, ("cpu",), "init", spec)


def crawl_catalogue(out: str) -> str:
    """A crawl output folder (items.jsonl + images/) of the 12 fixture garments, with names,
    brands and prices from the fixture product details."""
    import hashlib

    from crawler.catalogue import parse_detail
    goods = json.load(open(os.path.join(MUSINSA, "images", "goods_map.json")))
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    with open(os.path.join(out, "items.jsonl"), "w", encoding="utf-8") as f:
        for g in goods:
            no = g["goodsNo"]
            path = os.path.join(MUSINSA, "detail", f"goods_{no}.json")
            with open(path, "rb") as d:
                detail = parse_detail(d.read(), path)
            rel = os.path.join("images", str(no), "00_" + g["fixture_image"])
            os.makedirs(os.path.join(out, os.path.dirname(rel)), exist_ok=True)
            shutil.copy(os.path.join(MUSINSA, "images", g["fixture_image"]), os.path.join(out, rel))
            data = open(os.path.join(out, rel), "rb").read()
            record = {"goodsNo": no, "category": "top" if g["category"] == "001" else "bottom",
                      "category_code": g["category"], **{k: v for k, v in detail.items() if k != "goodsNo"},
                      "images": [{"file": rel, "sha256": hashlib.sha256(data).hexdigest()}]}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return out


def photo_paths() -> list[str]:
    return sorted(os.path.join(PHOTOS, n) for n in os.listdir(PHOTOS) if n.endswith(".jpg"))


class RunningServer:
    """The service's aiohttp app on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, service):
        self.service = service
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self):
        from aiohttp import web
        self.thread.start()

        async def start():
            self.runner = web.AppRunner(self.service.app(), access_log=None)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            return site._server.sockets[0].getsockname()[1]

        port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(60)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def _client_run(url: str, token: str, work: list[tuple[str, str]], latencies: list, results: dict):
    import aiohttp
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        jar.update_cookies({"tryon_session": token})
        async with http.get(url + "/api/session") as r:
            csrf = (await r.json())["csrf_token"]
        for photo_id, garment_id in work:
            t0 = time.perf_counter()
            async with http.post(url + "/api/tryon", json={"photo_id": photo_id, "garment_id": garment_id,
                                                           "view": "framed"},
                                 headers={"X-CSRF-Token": csrf}) as r:
                body = await r.read()
                status = r.status
            latencies.append(time.perf_counter() - t0)
            results.setdefault((token, photo_id, garment_id), []).append((status, body))


def load(url: str, clients: dict[str, str], garments: list[str], requests: int) -> dict:
    """``requests`` try-ons spread over the clients ({session token: its photo id}), all
    clients at once; returns latency percentiles, throughput and every response."""
    tokens = list(clients)
    work = {t: [] for t in tokens}
    for i in range(requests):
        t = tokens[i % len(tokens)]
        work[t].append((clients[t], garments[(i // len(tokens) + tokens.index(t)) % len(garments)]))
    latencies, results = [], {}

    async def run():
        await asyncio.gather(*(_client_run(url, t, work[t], latencies, results) for t in tokens))

    t0 = time.perf_counter()
    asyncio.run(run())
    wall = time.perf_counter() - t0
    ms = sorted(x * 1000 for x in latencies)
    return {"requests": len(ms), "clients": len(tokens), "wall_s": wall, "throughput_rps": len(ms) / wall,
            "p50_ms": statistics.median(ms), "p99_ms": ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))],
            "mean_ms": statistics.fmean(ms), "results": results}


class RecordingModel:
    """The served model, recording every call's examples and results, so that each response
    can be checked against what the model computed for that very request."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, examples):
        results = self.model(examples)
        self.calls.append((list(examples), results))
        return results


def _fingerprint(example: dict) -> bytes:
    return b"".join(np.ascontiguousarray(example[k]).tobytes() for k in sorted(example))


def check_results(results: dict, model: RecordingModel, example) -> dict:
    """Every response is 200 and exactly one of the images the model computed for its own
    (photo, garment) (a mix-up would show another pair's image). Re-running the first
    recorded batch gives the same images bit for bit (same executable, same inputs). Returns
    the counts and the number of distinct images among the pairs."""
    import io

    from PIL import Image
    pair_of = {_fingerprint(example(*pair)): pair for pair in {key[1:] for key in results}}
    computed: dict = {}
    for examples, outputs in model.calls:
        for e, (image, _) in zip(examples, outputs):
            computed.setdefault(pair_of[_fingerprint(e)], set()).add(image.tobytes())
    checked = 0
    for (_, photo_id, garment_id), responses in results.items():
        for status, body in responses:
            assert status == 200, (status, body[:200])
            got = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
            assert got.tobytes() in computed[(photo_id, garment_id)], \
                f"photo {photo_id} x garment {garment_id}: not the image the model made for this pair"
            checked += 1
    examples, outputs = model.calls[0]
    again = model.model(examples)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(again, outputs))
    firsts = {min(images) for images in computed.values()}
    return {"checked": checked, "pairs": len(computed), "distinct_results": len(firsts)}


def load_scenario(export_dir: str, catalogue, preprocessor, store_dir: str, requests: int = 200,
                  max_batches=(1, 8), max_wait_ms: float = 5.0) -> dict:
    """The shipped photos as 16 owners (one photo each, added through the store), then
    ``requests`` try-ons from all of them at once against the service with each max_batch
    (results not cached, no rate limit, every batch size compiled first). Every response is
    checked to be exactly what the model computed for its own pair (check_results). Returns
    the figures per max_batch."""
    from tryon_jax.serving import app
    from tryon_jax.serving.served_model import ExportedTryOn
    from tryon_jax.serving.store import PhotoStore
    store = PhotoStore(store_dir, preprocessor)
    clients = {}
    for i, path in enumerate(photo_paths()):
        token = f"load-client-{i:02d}-" + "x" * 24
        with open(path, "rb") as f:
            clients[token] = store.add(app.owner_id(token), f.read(), consent=True, name=path).id
    garments = [g.id for g in catalogue.list("top")]  # the model tries tops on
    report = {}
    for max_batch in max_batches:
        model = ExportedTryOn(export_dir, max_batch)
        owner_of = {photo_id: app.owner_id(token) for token, photo_id in clients.items()}

        def example(photo_id, garment_id):
            p, g = store.person(owner_of[photo_id], photo_id), catalogue.get(garment_id)
            return model.example(p.image, p.label, p.keypoints, g.cloth, g.mask)

        model.warmup(example(next(iter(clients.values())), garments[0]))  # compilation stays out of the latencies
        recording = RecordingModel(model)
        service = app.TryOnService(recording, catalogue, store, app.Settings(
            max_batch=max_batch, max_wait_ms=max_wait_ms, rate_per_s=0, cache=False))
        with RunningServer(service) as server:
            result = load(server.url, clients, garments, requests)
        result.update(check_results(result.pop("results"), recording, example))
        result.update({k: service.batcher.stats()[k] for k in ("batches", "mean_batch", "model_busy_s")})
        report[f"max_batch_{max_batch}"] = result
    store.close()
    return report
