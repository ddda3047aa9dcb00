"""The try-on service's aiohttp app: a JSON API and a web page over the exported model, the
garment catalogue and the people's photo store (python -m tryon_jax.serve runs it; its
docstring lists the API).

The owner is an unguessable session token in an HttpOnly, SameSite=Strict cookie (the store
sees only its hash); POST and DELETE need the header X-CSRF-Token (an HMAC of the session)
and a same-origin Origin when the browser sends one. Uploads are capped and judged by their
bytes, not their name; each client has a token-bucket rate limit; every request has a time
limit; concurrent try-ons are micro-batched (serving.batching) and results are cached per
(photo, garment, model) next to the photo. A try-on comes back put into the person's own photo
(person.framing.paste_back) unless the framed 256x192 picture is asked for. Logs are JSON lines on stderr.
"""
import asyncio
import concurrent.futures
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import secrets
import time

import numpy as np
from aiohttp import web

from tryon_jax.core import files
from tryon_jax.data.catalogue import REGION, Catalogue
from tryon_jax.person.framing import paste_back
from tryon_jax.serving.batching import MicroBatcher
from tryon_jax.serving.rate_limit import RateLimiter
from tryon_jax.serving.store import CONSENT_TEXT, ConsentError, LimitError, NotFound, PhotoStore, Refused

WEB_DIR = os.path.join(os.path.dirname(__file__), "web")
SESSION_COOKIE = "tryon_session"
_TOKEN_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
log = logging.getLogger("tryon_jax.serve")
TOKEN, OWNER = web.RequestKey("token", str), web.RequestKey("owner", str)
PURGE_TASK = web.AppKey("purge", asyncio.Task)
# A try-on result as the person's own photo (the model's picture put back into it) or as the
# model's framed picture.
VIEWS = ("photo", "framed")


@dataclasses.dataclass
class Settings:
    max_batch: int = 8
    max_wait_ms: float = 10.0
    max_upload_bytes: int = 10 << 20
    rate_per_s: float = 10.0  # per client; 0 = no limit
    burst: int = 30
    timeout_s: float = 60.0
    cache: bool = True


def _error(status: int, message: str, **headers) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def owner_id(token: str) -> str:
    """The store's owner id of a session token (its hash: the store never sees the token)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


class TryOnService:
    def __init__(self, model, catalogue: Catalogue, store: PhotoStore, settings: Settings = Settings(),
                 bottoms_model=None):
        self.model, self.catalogue, self.store, self.settings = model, catalogue, store, settings
        # one model per garment region served (tops; bottoms when a lower-body model is given)
        self.models = {"upper": model, **({"lower": bottoms_model} if bottoms_model is not None else {})}
        self.secret = secrets.token_bytes(32)
        self.batchers = {r: MicroBatcher(m, settings.max_batch, settings.max_wait_ms / 1000)
                         for r, m in self.models.items()}
        self.batcher = self.batchers["upper"]
        self.limiter = RateLimiter(settings.rate_per_s, settings.burst)
        self.prep_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare")
        self.inflight: dict[tuple, asyncio.Future] = {}
        self.started = time.time()
        self.counts = {"requests": 0, "tryons": 0, "cache_hits": 0}

    # --- sessions, CSRF -------------------------------------------------------------------------

    def csrf_token(self, token: str) -> str:
        return hmac.new(self.secret, token.encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def _valid_token(token: str | None) -> bool:
        return bool(token) and 32 <= len(token) <= 64 and set(token) <= _TOKEN_CHARS

    # --- middleware -----------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        t0 = time.perf_counter()
        token = request.cookies.get(SESSION_COOKIE)
        new_token = None
        if not self._valid_token(token):
            token = new_token = secrets.token_urlsafe(32)
        request[TOKEN], request[OWNER] = token, owner_id(token)
        self.counts["requests"] += 1
        try:
            response = await self._guarded(request, handler, new_token is not None)
        except web.HTTPException as e:  # aiohttp's own (404 route, 405, 413 body too large)
            message = e.text if e.content_type == "application/json" else (e.reason or "error")
            if e.status == 413:
                message = f"upload too large (limit {self.settings.max_upload_bytes // (1 << 20)} MB)"
            response = _error(e.status, message)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = _error(500, "internal error (logged on the server)")
        if new_token:
            response.set_cookie(SESSION_COOKIE, new_token, httponly=True, samesite="Strict", path="/",
                                secure=request.secure, max_age=365 * 86400)
        response.headers.setdefault("Cache-Control", "private, no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' blob: data:; "
                                                       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
        log.info(json.dumps({"event": "request", "method": request.method, "path": request.path,
                             "status": response.status, "ms": round((time.perf_counter() - t0) * 1000, 1),
                             "client": request[OWNER][:8]}))
        return response

    async def _guarded(self, request: web.Request, handler, new_session: bool) -> web.StreamResponse:
        api = request.path.startswith("/api/")
        if api:
            wait = self.limiter.check(request[OWNER] if not new_session else f"ip:{request.remote}")
            if wait:
                return _error(429, f"too many requests; try again in {wait:.1f} s",
                              **{"Retry-After": str(max(1, round(wait)))})
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            problem = self._csrf_problem(request, new_session)
            if problem:
                return _error(403, problem)
        try:
            return await asyncio.wait_for(handler(request), self.settings.timeout_s)
        except TimeoutError:
            return _error(503, f"the request took longer than {self.settings.timeout_s:g} s; try again")

    def _csrf_problem(self, request: web.Request, new_session: bool) -> str | None:
        origin = request.headers.get("Origin")
        if origin and origin != "null" and origin.split("://", 1)[-1] != request.host:
            return f"cross-origin request refused (Origin {origin})"
        if new_session:
            return "no session; load the page (GET /api/session) first"
        sent = request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(sent, self.csrf_token(request[TOKEN])):
            return "missing or wrong CSRF token (header X-CSRF-Token from GET /api/session)"
        return None

    # --- handlers -------------------------------------------------------------------------------

    async def session(self, request):
        return web.json_response({"csrf_token": self.csrf_token(request[TOKEN]), "consent_text": CONSENT_TEXT,
                                  "max_upload_bytes": self.settings.max_upload_bytes})

    def _photo_json(self, record) -> dict:
        return {**record.public(), "image_url": f"/api/photos/{record.id}/image"}

    async def list_photos(self, request):
        return web.json_response({"photos": [self._photo_json(r) for r in self.store.list(request[OWNER])]})

    async def upload(self, request):
        from tryon_jax.person.photo import PhotoError, TooLarge, UnsupportedFormat
        from tryon_jax.person.preprocessor import PersonError
        if not request.content_type.startswith("multipart/"):
            return _error(400, "send the photo as multipart/form-data with fields 'photo' and 'consent'")
        data, name, consent = None, "photo", False
        reader = await request.multipart()
        async for part in reader:
            if part.name == "photo":
                name = part.filename or "photo"
                chunks, size = [], 0
                while chunk := await part.read_chunk(1 << 16):
                    size += len(chunk)
                    if size > self.settings.max_upload_bytes:
                        return _error(413, f"upload too large (limit {self.settings.max_upload_bytes // (1 << 20)} MB)")
                    chunks.append(chunk)
                data = b"".join(chunks)
            elif part.name == "consent":
                consent = (await part.text()).strip().lower() in ("yes", "true", "on", "1")
        if data is None:
            return _error(400, "no 'photo' file in the form")
        if not consent:
            return _error(400, "consent is required to store a photo: " + CONSENT_TEXT)
        loop = asyncio.get_running_loop()
        try:
            record = await loop.run_in_executor(self.prep_pool, lambda: self.store.add(
                request[OWNER], data, consent=True, name=name))
        except ConsentError as e:
            return _error(400, str(e))
        except LimitError as e:
            return _error(409, str(e))
        except UnsupportedFormat as e:
            return _error(415, str(e))
        except TooLarge as e:
            return _error(413, str(e))
        except (PhotoError, PersonError) as e:
            return _error(422, str(e))
        log.info(json.dumps({"event": "photo_added", "client": request[OWNER][:8], "bytes": len(data)}))
        return web.json_response({"photo": self._photo_json(record)}, status=201)

    async def photo_image(self, request):
        try:
            path = self.store.file(request[OWNER], request.match_info["id"], "person.png")
        except NotFound:
            return _error(404, "no such photo")
        return web.FileResponse(path, headers={"Content-Type": "image/png", "Cache-Control": "private, no-store"})

    async def delete_photo(self, request):
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, self.store.delete, request[OWNER], request.match_info["id"])
        except NotFound:
            return _error(404, "no such photo")
        log.info(json.dumps({"event": "photo_deleted", "client": request[OWNER][:8]}))
        return web.Response(status=204)

    async def garments(self, request):
        category = request.query.get("category") or None
        try:
            items = self.catalogue.list(category)
        except ValueError as e:
            return _error(400, str(e))
        regions = tuple(self.models)
        return web.json_response({"garments": [{**g.public(regions), "image_url": f"/api/garments/{g.id}/image"}
                                               for g in items], "not_tryable": self.catalogue.reasons})

    async def garment_image(self, request):
        try:
            png = self.catalogue.png(request.match_info["id"])
        except KeyError:
            return _error(404, "no such garment")
        return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "public, max-age=3600"})

    async def tryon(self, request):
        try:
            body = await request.json()
            photo_id, garment_id = str(body["photo_id"]), str(body["garment_id"])
            view = str(body.get("view", "photo"))
        except (ValueError, KeyError, TypeError, AttributeError):
            return _error(400, 'send JSON {"photo_id": ..., "garment_id": ..., "view": "photo" | "framed"}')
        if view not in VIEWS:
            return _error(400, f"view must be one of {', '.join(VIEWS)}")
        owner = request[OWNER]
        try:
            self.store.get(owner, photo_id)
        except NotFound:
            return _error(404, "no such photo")
        try:
            garment = self.catalogue.get(garment_id)
        except KeyError:
            return _error(404, "no such garment")
        refusal = garment.refusal(tuple(self.models))
        if refusal:
            return _error(422, f"garment {garment.id}: {refusal}")
        region = REGION[garment.category]
        model = self.models[region]
        self.counts["tryons"] += 1
        if self.settings.cache:
            cached = {v: self.store.cached_result(owner, photo_id, garment.id, f"{model.id}_{v}") for v in VIEWS}
            if cached["framed"] is not None:  # cached with the photo view whenever there is one
                self.counts["cache_hits"] += 1
                return self._result(cached, view, "hit")
        key = (owner, photo_id, garment.id)
        future = self.inflight.get(key)
        if future is None:  # identical requests in flight share one model call
            future = asyncio.ensure_future(self._tryon_pngs(owner, photo_id, garment, region))
            self.inflight[key] = future
            future.add_done_callback(lambda _: self.inflight.pop(key, None))
        try:
            pngs = await asyncio.shield(future)
        except NotFound:
            return _error(404, "the photo was deleted")
        except Refused as e:
            return _error(422, f"photo {photo_id}: {e}")
        return self._result(pngs, view, "miss")

    @staticmethod
    def _result(pngs: dict, view: str, cache: str) -> web.Response:
        """The view asked for; the framed one where the photo cannot be had (a photo stored before
        framings were kept, or a model export without the replaced region)."""
        shown = view if pngs.get(view) is not None else "framed"
        return web.Response(body=pngs[shown], content_type="image/png",
                            headers={"X-Tryon-Cache": cache, "X-Tryon-View": shown})

    async def _tryon_pngs(self, owner: str, photo_id: str, garment, region: str = "upper") -> dict:
        """{"framed": the model's picture, "photo": it put back into the person's photo (or None)}.
        The person as prepared for the garment's region (bottoms: full-body framing, on first use)."""
        loop = asyncio.get_running_loop()
        person = await loop.run_in_executor(self.prep_pool, self.store.person, owner, photo_id, region)
        model = self.models[region]
        example = model.example(person.image, person.label, person.keypoints, garment.cloth, garment.mask)
        image, changed = await self.batchers[region].submit(example)
        pngs = {"framed": files.png_bytes(image), "photo": None}
        if changed is not None and person.framing is not None:
            photo = await loop.run_in_executor(self.prep_pool, self.store.photo, owner, photo_id)
            pasted = await loop.run_in_executor(self.prep_pool, paste_back, photo, image, changed, person.framing)
            pngs["photo"] = files.png_bytes(pasted)
        if self.settings.cache:
            try:
                for v, png in pngs.items():
                    if png is not None:
                        self.store.cache_result(owner, photo_id, garment.id, f"{model.id}_{v}", png)
            except NotFound:  # deleted while it ran: keep nothing
                pass
        return pngs

    async def health(self, request):
        return web.json_response({"status": "ok", "model": self.model.id, "garments": len(self.catalogue.garments),
                                  "models": {r: m.id for r, m in self.models.items()},
                                  **self.store.stats(), "uptime_s": round(time.time() - self.started, 1),
                                  "batching": self.batcher.stats(), **self.counts})

    async def index(self, request):
        return web.FileResponse(os.path.join(WEB_DIR, "index.html"), headers={"Cache-Control": "no-cache"})

    # --- the app --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware], client_max_size=self.settings.max_upload_bytes + (1 << 16))
        app.add_routes([
            web.get("/", self.index),
            web.get("/healthz", self.health),
            web.get("/api/session", self.session),
            web.get("/api/photos", self.list_photos),
            web.post("/api/photos", self.upload),
            web.get("/api/photos/{id}/image", self.photo_image),
            web.delete("/api/photos/{id}", self.delete_photo),
            web.get("/api/garments", self.garments),
            web.get("/api/garments/{id}/image", self.garment_image),
            web.post("/api/tryon", self.tryon),
            web.static("/static", WEB_DIR, append_version=False),
        ])

        async def purge_hourly():
            while True:
                await asyncio.sleep(3600)
                purged = await asyncio.get_running_loop().run_in_executor(None, self.store.purge_expired)
                if purged:
                    log.info(json.dumps({"event": "retention", "deleted": purged}))

        async def startup(_):
            for batcher in self.batchers.values():
                batcher.start()
            app[PURGE_TASK] = asyncio.get_running_loop().create_task(purge_hourly())

        async def cleanup(_):
            app[PURGE_TASK].cancel()
            for batcher in self.batchers.values():
                await batcher.stop()
            self.prep_pool.shutdown(wait=True)

        app.on_startup.append(startup)
        app.on_cleanup.append(cleanup)
        return app


def build(export_dir: str, catalogue_dir: str, store_dir: str, settings: Settings = Settings(),
          parser_weights: str | None = None, retention_days: float = 30.0, max_photos: int = 20,
          warmup: bool = True, bottoms_export: str | None = None) -> TryOnService:
    """The service with its model for tops and, with ``bottoms_export``, a lower-body model for
    bottoms (each compiled for its batch size when ``warmup``)."""
    from tryon_jax.person.preprocessor import PersonPreprocessor
    from tryon_jax.serving.served_model import ExportedTryOn
    model = ExportedTryOn(export_dir, settings.max_batch, expect_garment="upper")
    bottoms = ExportedTryOn(bottoms_export, settings.max_batch, expect_garment="lower") if bottoms_export else None
    catalogue = Catalogue.load(catalogue_dir)
    pre = PersonPreprocessor(parser_weights)
    regions = {"lower": pre.for_garment("lower")} if bottoms else {}
    store = PhotoStore(store_dir, pre, retention_days, max_photos, region_preprocessors=regions)
    if warmup:
        g = next(iter(catalogue.garments.values()))
        for m in (model, bottoms) if bottoms else (model,):
            m.warmup(m.example(np.full((256, 192, 3), 255, np.uint8), np.zeros((256, 192), np.uint8),
                               np.zeros((18, 3)), g.cloth, g.mask))
    return TryOnService(model, catalogue, store, settings, bottoms)


