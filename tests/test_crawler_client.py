"""The crawler's HTTP client against a local server (loopback only): robots.txt, rate limit,
Retry-After, backoff, the 403 challenge stop, off-site redirects, size caps. Politeness is
asserted from the server's request log."""
import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from crawler.client import Client, CrawlStopped, FetchError, RateLimiter, retry_after_seconds

UA = "TryOnResearchBot/0.1 (+https://example.org/contact)"
CHALLENGE = ("<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>needs to review the "
             "security of your connection</body></html>")


class Server:
    """A loopback server whose routes are handlers; logs (time, path) of every request."""

    def __init__(self, routes: dict):
        self.routes, self.log = routes, []

    async def handle(self, request):
        self.log.append((time.monotonic(), request.path_qs, request.headers.get("User-Agent")))
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="not found")
        return await handler(request) if asyncio.iscoroutinefunction(handler) else handler(request)

    async def __aenter__(self):
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()

    def paths(self):
        return [p for _, p, _ in self.log]


def text(body, status=200, headers=None):
    return lambda request: web.Response(status=status, text=body, headers=headers)


ALLOW = {"/robots.txt": text("User-agent: *\nAllow: /\n")}


def crawl(routes, urls, **kw):
    """Runs the client over ``urls`` (paths) on a fresh server; returns (results, server)."""
    async def main():
        async with Server(routes) as server, aiohttp.ClientSession() as session:
            client = Client(session, [server.base], UA, **{"rate": 50.0, "backoff": 0.01, **kw})
            results = []
            for u in urls:
                try:
                    results.append(await client.get(u if u.startswith("http") else server.base + u))
                except (FetchError, CrawlStopped) as e:
                    results.append(e)
            return results, server
    return asyncio.run(main())


def test_robots_disallow_stops_before_any_other_request():
    results, server = crawl({"/robots.txt": text("User-agent: *\nDisallow: /\n"), "/a": text("x")}, ["/a", "/a"])
    assert all(isinstance(r, CrawlStopped) for r in results) and "robots.txt" in str(results[0])
    assert server.paths() == ["/robots.txt"]


def test_robots_per_bot_rules_and_status_codes():
    rules = "User-agent: *\nAllow: /\n\nUser-agent: TryOnResearchBot\nDisallow: /images/\n"
    results, server = crawl({"/robots.txt": text(rules), "/api": text("{}"), "/images/a.jpg": text("x")},
                            ["/api", "/images/a.jpg"])
    assert results[0][0] == 200 and isinstance(results[1], CrawlStopped)
    assert "/images/a.jpg" not in server.paths()
    results, _ = crawl({"/robots.txt": text("gone", 404), "/a": text("ok")}, ["/a"])  # 4xx: no rules
    assert results[0][2] == b"ok"
    results, server = crawl({"/robots.txt": text("down", 500), "/a": text("ok")}, ["/a"], retries=1)
    assert isinstance(results[0], CrawlStopped) and "/a" not in server.paths()  # 5xx: all disallowed
    _, server = crawl({"/robots.txt": text("User-agent: *\nDisallow: /\n"), "/a": text("ok")}, ["/a"],
                      obey_robots=False)
    assert server.paths() == ["/a"] and server.log[0][2] == UA


def test_retry_after_is_honoured_then_success():
    calls = []

    def flaky(request):
        calls.append(1)
        return web.Response(status=429, headers={"Retry-After": "1"}) if len(calls) == 1 else web.Response(text="ok")
    results, server = crawl({**ALLOW, "/a": flaky}, ["/a"])
    assert results[0][2] == b"ok"
    times = [t for t, p, _ in server.log if p == "/a"]
    assert len(times) == 2 and times[1] - times[0] >= 0.95
    assert retry_after_seconds("Wed, 22 Oct 2025 07:28:00 GMT", now=1761117980.0) == 100.0
    assert retry_after_seconds("soon") is None and retry_after_seconds("7") == 7.0


def test_5xx_and_timeouts_back_off_then_give_up():
    calls = []

    def twice_down(request):
        calls.append(1)
        return web.Response(status=502) if len(calls) <= 2 else web.Response(text="ok")

    async def slow(request):
        await asyncio.sleep(1.0)
        return web.Response(text="late")
    results, server = crawl({**ALLOW, "/a": twice_down, "/always": text("no", 500), "/slow": slow},
                            ["/a", "/always", "/slow"], retries=2, timeout=0.2)
    assert results[0][2] == b"ok"
    assert isinstance(results[1], FetchError) and "HTTP 500 after 3 attempts" in str(results[1])
    assert isinstance(results[2], FetchError) and "TimeoutError" in str(results[2])
    assert server.paths().count("/always") == 3 and server.paths().count("/slow") == 3


def test_403_challenge_stops_everything():
    results, server = crawl({**ALLOW, "/a": text(CHALLENGE, 403, {"cf-mitigated": "challenge"}), "/b": text("ok")},
                            ["/a", "/b"])
    assert isinstance(results[0], CrawlStopped) and "challenge" in str(results[0])
    assert isinstance(results[1], CrawlStopped) and "/b" not in server.paths()


def test_off_site_redirects_are_not_followed_and_bodies_are_capped():
    def big_streamed(request):
        return web.Response(body=b"x" * 5000)  # aiohttp sends Content-Length; see below for chunked

    async def chunked(request):
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(10):
            await resp.write(b"y" * 1000)
        return resp
    routes = {**ALLOW, "/away": text("", 302, {"Location": "http://127.0.0.2:9/x"}),
              "/here": text("", 302, {"Location": "/a"}), "/a": text("fine"), "/big": big_streamed, "/chunked": chunked}
    results, server = crawl(routes, ["/away", "/here", "/big", "/chunked", "http://127.0.0.2:9/x"], max_bytes=4096)
    assert isinstance(results[0], FetchError) and "not followed" in str(results[0])
    assert results[1][2] == b"fine"
    assert all(isinstance(r, FetchError) and "cap" in str(r) for r in results[2:4])
    assert isinstance(results[4], FetchError) and "outside the configured bases" in str(results[4])


def test_rate_limit_has_no_bursts():
    async def main():
        async with Server({**ALLOW, "/a": text("ok")}) as server, aiohttp.ClientSession() as session:
            client = Client(session, [server.base], UA, rate=10.0, concurrency=4)
            await asyncio.gather(*(client.get(f"{server.base}/a?i={i}") for i in range(8)))
            return server
    server = asyncio.run(main())
    starts = sorted(t for t, _, _ in server.log)
    assert len(starts) == 9  # robots + 8
    assert min(b - a for a, b in zip(starts, starts[1:])) >= 0.1 - 0.01
    with pytest.raises(ValueError, match="--rate"):
        RateLimiter(0)
