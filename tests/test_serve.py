"""The try-on service's API in-process: sessions, CSRF, uploads, owners, garments, try-on,
caching, micro-batching, rate limits, timeouts, deletion; and a load test with the exported
model (200 requests from 16 clients, with and without micro-batching)."""
import asyncio
import io
import json
import os
import time

import aiohttp
import numpy as np
import pytest
from PIL import Image

from tests import serve_fixtures as sf
from tryon_jax import serve
from tryon_jax.data.catalogue import Catalogue
from tryon_jax.person import framing
from tryon_jax.serving import app
from tryon_jax.serving.store import PhotoStore


class FakeModel:
    """Blends person and garment and says it replaced the person's clothes and arms; records
    the batch sizes it was called with."""
    id = "fake"

    def __init__(self, delay: float = 0.0):
        self.delay, self.calls = delay, []

    @staticmethod
    def example(image, label, keypoints, cloth, mask):
        return {"image": image, "cloth": cloth, "changed": np.isin(label, (4, 11, 13)).astype(np.uint8)}

    def __call__(self, examples):
        self.calls.append(len(examples))
        time.sleep(self.delay)
        return [(((e["image"].astype(int) + e["cloth"]) // 2).astype(np.uint8), e["changed"]) for e in examples]


@pytest.fixture(scope="module")
def preprocessor():
    from tryon_jax.person.preprocessor import PersonPreprocessor
    return PersonPreprocessor()


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    return Catalogue.load(sf.crawl_catalogue(str(tmp_path_factory.mktemp("crawl"))))


def make_service(tmp_path, preprocessor, catalogue, model=None, **settings):
    store = PhotoStore(str(tmp_path / "store"), preprocessor)
    return app.TryOnService(model or FakeModel(), catalogue, store, app.Settings(**settings))


class Client:
    """One browser: its own cookie jar (owner session) and CSRF token."""

    def __init__(self, url: str, token: str | None = None):
        self.url = url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        if token:
            self.http.cookie_jar.update_cookies({app.SESSION_COOKIE: token})
        self.csrf = None

    async def __aenter__(self):
        async with self.http.get(self.url + "/api/session") as r:
            assert r.status == 200
            self.csrf = (await r.json())["csrf_token"]
        return self

    async def __aexit__(self, *exc):
        await self.http.close()

    @property
    def owner(self) -> str:
        """The store's owner id of this browser's session cookie."""
        return app.owner_id(next(c.value for c in self.http.cookie_jar if c.key == app.SESSION_COOKIE))

    async def call(self, method, path, csrf=True, **kw):
        headers = kw.pop("headers", {})
        if csrf and self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        async with self.http.request(method, self.url + path, headers=headers, **kw) as r:
            body = await r.read()
            return r.status, r.headers, body

    async def upload(self, data: bytes, consent="yes", name="me.jpg"):
        form = aiohttp.FormData()
        form.add_field("photo", data, filename=name, content_type="image/jpeg")
        if consent is not None:
            form.add_field("consent", consent)
        status, _, body = await self.call("POST", "/api/photos", data=form)
        return status, json.loads(body)


def run(service, scenario):
    with sf.RunningServer(service) as server:
        return asyncio.run(scenario(server.url))


PHOTO = open(sf.photo_paths()[0], "rb").read()
PHOTO2 = open(sf.photo_paths()[1], "rb").read()


def test_session_csrf_and_headers(tmp_path, preprocessor, catalogue):
    service = make_service(tmp_path, preprocessor, catalogue)

    async def scenario(url):
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/") as r:
                assert r.status == 200 and "text/html" in r.headers["Content-Type"]
                cookie = r.headers["Set-Cookie"]
                assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
                assert "default-src 'self'" in r.headers["Content-Security-Policy"]
            for asset in ("/static/app.js", "/static/style.css"):
                async with http.get(url + asset) as r:
                    assert r.status == 200
            async with http.get(url + "/healthz") as r:
                health = await r.json()
                assert health["status"] == "ok" and health["garments"] == 12
        async with Client(url) as c:
            status, _, body = await c.call("DELETE", "/api/photos/abcdefghijklmnopqrstuvwx", csrf=False)
            assert status == 403 and b"CSRF" in body
            status, _, body = await c.call("POST", "/api/tryon", json={}, headers={"X-CSRF-Token": "0" * 32},
                                           csrf=False)
            assert status == 403
            status, _, body = await c.call("POST", "/api/tryon", json={}, headers={"Origin": "http://evil.example"})
            assert status == 403 and b"cross-origin" in body
            status, _, body = await c.call("POST", "/api/tryon", json={})
            assert status == 400 and json.loads(body)["error"]
            status, _, body = await c.call("GET", "/api/nothing")
            assert status == 404 and json.loads(body)["error"]
        async with aiohttp.ClientSession() as http:  # no session at all: refused, not created silently
            async with http.post(url + "/api/tryon", json={}) as r:
                assert r.status == 403

    run(service, scenario)


def test_upload_list_isolation_and_delete(tmp_path, preprocessor, catalogue):
    service = make_service(tmp_path, preprocessor, catalogue, max_upload_bytes=200_000)

    async def scenario(url):
        async with Client(url) as alice, Client(url) as bob:
            status, body = await alice.upload(PHOTO, consent=None)
            assert status == 400 and "consent" in body["error"]
            status, body = await alice.upload(b"%PDF-1.4\n" + b"x" * 500, name="photo.jpg")
            assert status == 415 and "PDF" in body["error"]
            status, body = await alice.upload(b"\xff" * 300_000)
            assert status == 413 and "limit" in body["error"]
            blank = io.BytesIO()
            Image.new("RGB", (192, 256), "white").save(blank, format="JPEG")
            status, body = await alice.upload(blank.getvalue())
            assert status == 422 and "no person" in body["error"]
            assert service.store.stats()["photos"] == 0

            status, body = await alice.upload(PHOTO, name="alice.jpg")
            assert status == 201, body
            photo = body["photo"]
            status, _, listing = await alice.call("GET", "/api/photos")
            assert [p["id"] for p in json.loads(listing)["photos"]] == [photo["id"]]
            status, headers, png = await alice.call("GET", photo["image_url"])
            assert status == 200 and Image.open(io.BytesIO(png)).size == (192, 256)
            assert "no-store" in headers["Cache-Control"]

            # bob sees nothing of alice's and can do nothing with it
            status, _, listing = await bob.call("GET", "/api/photos")
            assert json.loads(listing)["photos"] == []
            assert (await bob.call("GET", photo["image_url"]))[0] == 404
            assert (await bob.call("DELETE", f"/api/photos/{photo['id']}"))[0] == 404
            status, _, _ = await bob.call("POST", "/api/tryon", json={"photo_id": photo["id"], "garment_id": "4160088"})
            assert status == 404
            # nor with alice's CSRF token
            bob_csrf, bob.csrf = bob.csrf, alice.csrf
            assert (await bob.call("DELETE", f"/api/photos/{photo['id']}"))[0] == 403
            bob.csrf = bob_csrf

            status, _, _ = await alice.call("POST", "/api/tryon", json={"photo_id": photo["id"],
                                                                         "garment_id": "4160088"})
            assert status == 200
            assert (await alice.call("DELETE", f"/api/photos/{photo['id']}"))[0] == 204
            assert json.loads((await alice.call("GET", "/api/photos"))[2])["photos"] == []
            assert (await alice.call("GET", photo["image_url"]))[0] == 404
            return photo["id"]

    photo_id = run(service, scenario)
    root = service.store.root
    leftovers = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if not f.startswith("store.sqlite")]
    assert leftovers == []
    assert photo_id.encode() not in open(os.path.join(root, "store.sqlite3"), "rb").read()


def test_garments(tmp_path, preprocessor, catalogue):
    service = make_service(tmp_path, preprocessor, catalogue)

    async def scenario(url):
        async with Client(url) as c:
            every = json.loads((await c.call("GET", "/api/garments"))[2])["garments"]
            tops = json.loads((await c.call("GET", "/api/garments?category=top"))[2])["garments"]
            bottoms = json.loads((await c.call("GET", "/api/garments?category=bottom"))[2])["garments"]
            assert (len(every), len(tops), len(bottoms)) == (12, 7, 5)
            assert {g["category"] for g in tops} == {"top"} and all(g["name"] and g["price"] > 0 for g in every)
            assert all(g["tryon"] and "tryon_refusal" not in g for g in tops)
            assert all(not g["tryon"] and "no lower-body model" in g["tryon_refusal"] for g in bottoms)
            assert (await c.call("GET", "/api/garments?category=hats"))[0] == 400
            status, _, png = await c.call("GET", tops[0]["image_url"])
            assert status == 200 and Image.open(io.BytesIO(png)).size == (192, 256)
            assert (await c.call("GET", "/api/garments/999/image"))[0] == 404

    run(service, scenario)


def test_tryon_is_cached_and_micro_batched(tmp_path, preprocessor, catalogue):
    model = FakeModel(delay=0.2)
    service = make_service(tmp_path, preprocessor, catalogue, model, max_batch=4, max_wait_ms=50)

    async def scenario(url):
        async with Client(url) as c:
            photo = (await c.upload(PHOTO))[1]["photo"]
            garments = [g["id"] for g in json.loads((await c.call("GET", "/api/garments?category=top"))[2])["garments"]]
            body = lambda g: {"photo_id": photo["id"], "garment_id": g, "view": "framed"}  # noqa: E731
            first = await asyncio.gather(*(c.call("POST", "/api/tryon", json=body(g)) for g in garments[:6]))
            assert [r[0] for r in first] == [200] * 6
            assert {r[1]["X-Tryon-Cache"] for r in first} == {"miss"}
            again = await c.call("POST", "/api/tryon", json=body(garments[0]))
            assert again[1]["X-Tryon-Cache"] == "hit" and again[2] == first[0][2]
            person = service.store.person(c.owner, photo["id"])
            for g, (_, _, png) in zip(garments[:6], first):
                want = ((person.image.astype(int) + catalogue.get(g).cloth) // 2).astype(np.uint8)
                np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), want)
            # the same request twice at once: one model call
            calls = len(model.calls)
            twins = await asyncio.gather(*(c.call("POST", "/api/tryon", json=body(garments[6])) for _ in range(2)))
            assert twins[0][2] == twins[1][2] and sum(model.calls[calls:]) == 1

    run(service, scenario)
    assert max(model.calls) > 1  # 6 concurrent requests did not make 6 calls
    assert sum(model.calls[:2]) == 6 and len(model.calls) < 8


def test_tryon_comes_back_in_the_persons_own_photo(tmp_path, preprocessor, catalogue):
    """A person photographed larger than 256x192 and off-centre: the result has the photo's size,
    the model's region replaced (with a soft edge) and every other pixel as uploaded."""
    person = np.asarray(Image.open(io.BytesIO(PHOTO)).convert("RGB").resize((384, 512), Image.BICUBIC))
    canvas = np.full((800, 700, 3), 190, np.uint8)
    canvas[150:150 + 512, 260:260 + 384] = person
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="PNG")
    service = make_service(tmp_path, preprocessor, catalogue)

    async def scenario(url):
        async with Client(url) as c:
            photo = (await c.upload(buf.getvalue(), name="me.png"))[1]["photo"]
            top = json.loads((await c.call("GET", "/api/garments?category=top"))[2])["garments"][0]["id"]
            views = {}
            for view in ("photo", "framed", "photo"):  # the second photo view comes from the cache
                status, headers, png = await c.call("POST", "/api/tryon", json={"photo_id": photo["id"],
                                                                               "garment_id": top, "view": view})
                assert status == 200 and headers["X-Tryon-View"] == view
                views.setdefault(view, []).append(png)
            assert views["photo"][0] == views["photo"][1]
            return photo["id"], {v: np.asarray(Image.open(io.BytesIO(p[0]))) for v, p in views.items()}

    photo_id, views = run(service, scenario)
    assert views["framed"].shape == (256, 192, 3) and views["photo"].shape == canvas.shape
    stored = service.store.person(next(iter(service.store._db.execute("SELECT owner FROM photos")))[0], photo_id)
    region = np.isin(stored.label, (4, 11, 13))
    ys, xs = np.nonzero(region)
    back = np.c_[np.c_[xs, ys], np.ones(len(xs))] @ framing.invert(stored.framing).T  # into the photo
    changed = np.any(views["photo"] != canvas, axis=-1)
    assert changed.any() and region.any()
    # the region's box in the photo, grown by the soft edge (2 frame pixels grown and blurred)
    margin = 4 * 2 / stored.framing[0, 0] + 2
    cy, cx = np.nonzero(changed)
    assert back[:, 1].min() - margin <= cy.min() and cy.max() <= back[:, 1].max() + margin
    assert back[:, 0].min() - margin <= cx.min() and cx.max() <= back[:, 0].max() + margin
    assert 150 <= cy.min() and cy.max() < 150 + 512 and 260 <= cx.min() and cx.max() < 260 + 384


def test_bottoms_are_refused_with_the_reason(tmp_path, preprocessor, catalogue):
    model = FakeModel()
    service = make_service(tmp_path, preprocessor, catalogue, model)

    async def scenario(url):
        async with Client(url) as c:
            photo = (await c.upload(PHOTO))[1]["photo"]
            bottom = json.loads((await c.call("GET", "/api/garments?category=bottom"))[2])["garments"][0]
            status, _, body = await c.call("POST", "/api/tryon", json={"photo_id": photo["id"],
                                                                       "garment_id": bottom["id"]})
            assert status == 422 and "no lower-body model is configured" in json.loads(body)["error"]

    run(service, scenario)
    assert model.calls == []


class StandingPreprocessor:
    """Stands in for the full-body preparation: the photo's pixels as the person; refuses a
    photo whose top-left pixel is dark (as the real one refuses legs cut off)."""
    calls = 0

    def prepare(self, data, name):
        from tryon_jax.person.preprocessor import Person, PersonError
        StandingPreprocessor.calls += 1
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((192, 256)))
        if image[0, 0].max() < 60:
            raise PersonError(f"{name}: person cut off above the feet (left ankle outside the photo)")
        label = np.zeros((256, 192), np.uint8)
        label[120:200, 60:130], label[200:240, 60:130] = 8, 9
        return Person(image, label, np.tile(np.float32([[96, 120, 0.9]]), (18, 1)), np.eye(2, 3))


def test_bottoms_with_a_lower_body_model(tmp_path, preprocessor, catalogue):
    """With a second, lower-body model, bottoms are tried on with it, on the person prepared
    whole on first use (kept with the photo); a photo that cannot be is refused with the reason."""
    tops, bottoms = FakeModel(), FakeModel()
    bottoms.id = "fake-lower"
    store = PhotoStore(str(tmp_path / "store"), preprocessor, region_preprocessors={"lower": StandingPreprocessor()})
    service = app.TryOnService(tops, catalogue, store, app.Settings(), bottoms_model=bottoms)
    dark = np.asarray(Image.open(io.BytesIO(PHOTO)).convert("RGB")).copy()
    dark[:8, :8] = 0
    buf = io.BytesIO()
    Image.fromarray(dark).save(buf, format="PNG")

    async def scenario(url):
        async with Client(url) as c:
            garments = json.loads((await c.call("GET", "/api/garments"))[2])["garments"]
            assert all(g["tryon"] and "tryon_refusal" not in g for g in garments)
            bottom = next(g["id"] for g in garments if g["category"] == "bottom")
            top = next(g["id"] for g in garments if g["category"] == "top")
            photo = (await c.upload(PHOTO))[1]["photo"]["id"]
            for garment in (bottom, bottom, top):
                status, headers, _ = await c.call("POST", "/api/tryon", json={"photo_id": photo, "garment_id": garment,
                                                                              "view": "framed"})
                assert status == 200
            assert headers["X-Tryon-Cache"] == "miss"
            cut = (await c.upload(buf.getvalue(), name="cut.png"))[1]["photo"]["id"]
            for _ in range(2):  # the refusal is kept: the photo is not prepared again
                status, _, body = await c.call("POST", "/api/tryon", json={"photo_id": cut, "garment_id": bottom})
                assert status == 422 and "cut off above the feet" in json.loads(body)["error"]
            return photo, cut

    StandingPreprocessor.calls = 0
    photo, cut = run(service, scenario)
    assert bottoms.calls == [1] and tops.calls == [1] and StandingPreprocessor.calls == 2
    assert os.path.isfile(os.path.join(store.root, "photos", photo, "lower", "person.png"))
    assert os.path.isfile(os.path.join(store.root, "photos", cut, "lower.refused"))


def test_products_without_a_photo_of_the_garment_alone(tmp_path, preprocessor):
    """Listed with the reason and counted per reason; a try-on of one is refused with it."""
    from tests.test_garment_photo import write_crawl
    write_crawl(tmp_path / "crawl")
    model = FakeModel()
    service = make_service(tmp_path, preprocessor, Catalogue.load(str(tmp_path / "crawl")), model)

    async def scenario(url):
        async with Client(url) as c:
            listing = json.loads((await c.call("GET", "/api/garments"))[2])
            assert listing["not_tryable"] == {"no_garment_photo": 1, "bad_photo": 1}
            assert [g["tryon"] for g in listing["garments"]] == [True, False]
            photo = (await c.upload(PHOTO))[1]["photo"]["id"]
            status, _, body = await c.call("POST", "/api/tryon", json={"photo_id": photo, "garment_id": "2"})
            assert status == 422 and "no photo of the garment alone" in json.loads(body)["error"]

    run(service, scenario)
    assert model.calls == []


def test_rate_limit_and_timeout(tmp_path, preprocessor, catalogue):
    service = make_service(tmp_path, preprocessor, catalogue, FakeModel(delay=1.5), rate_per_s=1.0, burst=4,
                           timeout_s=0.5)
    token = "t" * 40
    photo = service.store.add(app.owner_id(token), PHOTO, consent=True)

    async def scenario(url):
        async with Client(url, token) as c:  # 1 token
            assert (await c.call("GET", "/api/photos"))[0] == 200  # 2
            status, _, body = await c.call("POST", "/api/tryon", json={"photo_id": photo.id,
                                                                       "garment_id": "4160088"})  # 3
            assert status == 503 and b"longer than" in body
            await c.call("GET", "/api/photos")  # 4
            status, headers, body = await c.call("GET", "/api/photos")
            assert status == 429 and int(headers["Retry-After"]) >= 1 and b"try again" in body
            await asyncio.sleep(1.1)
            assert (await c.call("GET", "/api/photos"))[0] == 200

    run(service, scenario)


def test_rate_limiter_refills():
    now = [0.0]
    limiter = app.RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.check("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.check("a") == pytest.approx(0.5)
    assert limiter.check("b") == 0  # per client
    now[0] += 0.5
    assert limiter.check("a") == 0 and limiter.check("a") > 0


@pytest.mark.slow
def test_load_with_and_without_micro_batching(tmp_path, preprocessor, catalogue):
    """200 try-ons from 16 clients on the exported model; each response is its own pair's image."""
    report = sf.load_scenario(sf.small_export(str(tmp_path / "export")), catalogue, preprocessor,
                              str(tmp_path / "store"), requests=200)
    print(json.dumps(report, indent=1))
    for r in report.values():
        assert r["requests"] == r["checked"] == 200 and r["clients"] == 16
        # different people give different pictures, so a mix-up would have been seen
        assert r["distinct_results"] == r["pairs"]
    assert report["max_batch_1"]["mean_batch"] == 1 and report["max_batch_8"]["mean_batch"] > 1.5


def test_catalogue_skips_bad_items_and_explains(tmp_path):
    from tryon_jax.data.catalogue import CatalogueError
    root = sf.crawl_catalogue(str(tmp_path / "crawl"))
    items = [json.loads(line) for line in open(os.path.join(root, "items.jsonl"), encoding="utf-8")]
    with open(os.path.join(root, items[0]["images"][0]["file"]), "r+b") as f:
        f.truncate(100)  # a truncated photo: its sha256 no longer matches
    with open(os.path.join(root, "items.jsonl"), "a", encoding="utf-8") as f:
        f.write('{"goodsNo": 1, "categ')  # a torn last line
    cat = Catalogue.load(root)
    assert len(cat.garments) == 11 and str(items[0]["goodsNo"]) not in cat.garments
    assert any("sha256" in r for r in cat.skipped) and any("not JSON" in r for r in cat.skipped)
    with pytest.raises(CatalogueError, match="neither a crawl output"):
        Catalogue.load(str(tmp_path))


def test_cli_refuses_missing_export(tmp_path, capsys):
    code = serve.main(["--export", str(tmp_path / "nope"), "--catalogue", str(tmp_path),
                       "--store", str(tmp_path / "s")])
    assert code == 2 and "python -m tryon_jax.export" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_serves_on_loopback(tmp_path, capsys):
    """The real command: starts, answers /healthz on 127.0.0.1, logs JSON lines, stops on SIGTERM."""
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request
    export_dir = sf.small_export(str(tmp_path / "export"))
    crawl = sf.crawl_catalogue(str(tmp_path / "crawl"))
    # a tops model named for bottoms is refused, saying which region it dresses
    assert serve.main(["--export", export_dir, "--bottoms-export", export_dir, "--catalogue", crawl,
                       "--store", str(tmp_path / "store0")]) == 2
    assert "a model of the upper garment region, not lower" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tryon_jax.serve", "--export", export_dir, "--catalogue", crawl,
                             "--store", str(tmp_path / "store"), "--port", str(port), "--max-batch", "2"],
                            stderr=subprocess.PIPE, text=True, cwd=sf.ROOT)
    try:
        deadline = time.time() + 300
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    health = json.loads(r.read())
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, "the server did not come up"
                time.sleep(1)
        assert health["status"] == "ok" and health["garments"] == 12 and health["batching"]["max_batch"] == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=60)[1]
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    start = next(e for e in events if e.get("event") == "start")
    assert start["url"] == f"http://127.0.0.1:{port}"
    assert any(e.get("event") == "request" and e["path"] == "/healthz" and e["status"] == 200 for e in events)


def test_serving_loads_no_tryon_model_or_training_code():
    """The service runs the jax.export artefact: the try-on model's modules and the training
    stack are never imported (the parser of the person preprocessing is)."""
    import subprocess
    import sys
    code = ("import sys; import tryon_jax.serve, tryon_jax.serving.served_model; "
            "from tryon_jax.preprocess.person import PersonPreprocessor; "
            "print(' '.join(m for m in sys.modules if m.startswith(('tryon_jax.acgpn', 'tryon_jax.models.acgpn', "
            "'tryon_jax.models.networks', 'tryon_jax.weights.convert', 'tryon_jax.weights.checkpoint', "
            "'tryon_jax.export', 'optax', 'orbax', 'tensorflow_datasets'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=sf.ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""
