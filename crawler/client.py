"""The crawler's HTTP client: every politeness and robustness rule in one place.

- Only URLs whose scheme://host:port is one of the configured bases are fetched, redirects
  included (followed by hand, at most ``MAX_REDIRECTS``).
- robots.txt of every host is fetched first and obeyed for our User-Agent's product token
  (RFC 9309: 2xx parse, 4xx no rules, 5xx or unreachable: everything disallowed).
- Per-host rate limit: requests start at least 1/rate seconds apart, never in bursts; a
  semaphore bounds concurrency.
- 429/503: wait Retry-After (seconds or an HTTP date, capped), then retry; other 5xx and
  timeouts: capped exponential backoff with jitter. A 403 challenge stops the whole crawl.
- Bodies are capped (Content-Length and while streaming).
"""
import asyncio
import email.utils
import random
import time
import urllib.parse
import urllib.robotparser

import aiohttp

MAX_REDIRECTS = 5


class CrawlStopped(Exception):
    """The crawl must end now (403 challenge, robots.txt disallow): no further requests."""


class FetchError(Exception):
    """One URL failed for good (after retries, or a 4xx, an oversized body, an off-site redirect)."""


def origin(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    port = p.port or {"http": 80, "https": 443}.get(p.scheme)
    return f"{p.scheme}://{p.hostname}:{port}"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class RateLimiter:
    """Per-host start times at least ``1/rate`` seconds apart (no bursts)."""

    def __init__(self, rate: float, clock=time.monotonic, sleep=asyncio.sleep):
        if rate <= 0:
            raise ValueError(f"--rate must be > 0 requests/s, got {rate}")
        self.interval = 1.0 / rate
        self._next: dict[str, float] = {}
        self._clock, self._sleep = clock, sleep

    async def wait(self, host: str) -> float:
        """Sleeps until the host's next start time and claims it at the moment it runs (a task
        that wakes late re-checks, so late wake-ups never bunch into a burst); returns the wait."""
        first = self._clock()
        while True:
            now = self._clock()
            start = self._next.get(host, now)
            if start <= now:
                self._next[host] = now + self.interval
                return now - first
            await self._sleep(start - now)


class Client:
    def __init__(self, session: aiohttp.ClientSession, bases, user_agent: str, *, rate: float = 1.0,
                 concurrency: int = 4, max_bytes: int = 20 << 20, timeout: float = 30.0, retries: int = 4,
                 backoff: float = 1.0, backoff_cap: float = 60.0, retry_after_cap: float = 600.0,
                 obey_robots: bool = True, on_wait=None):
        self.session, self.user_agent = session, user_agent
        self.allowed = {origin(b) for b in bases}
        self.token = user_agent.split("/", 1)[0].strip()
        self.limiter = RateLimiter(rate)
        self.semaphore = asyncio.Semaphore(concurrency)
        self.max_bytes, self.timeout, self.retries = max_bytes, timeout, retries
        self.backoff, self.backoff_cap, self.retry_after_cap = backoff, backoff_cap, retry_after_cap
        self.obey_robots = obey_robots
        self.on_wait = on_wait or (lambda seconds, why: None)
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._robots_lock = asyncio.Lock()
        self.stopped: str | None = None

    def check_allowed(self, url: str) -> None:
        if origin(url) not in self.allowed:
            raise FetchError(f"{url}: host outside the configured bases ({sorted(self.allowed)})")

    async def get(self, url: str) -> tuple[int, dict, bytes]:
        """GET with every rule above; returns (status, headers, body) of a 2xx answer."""
        self.check_allowed(url)
        if self.obey_robots:
            await self._check_robots(url)
        for _ in range(MAX_REDIRECTS + 1):
            status, headers, body = await self._get_with_retries(url)
            if status in (301, 302, 303, 307, 308):
                target = urllib.parse.urljoin(url, headers.get("Location", ""))
                if origin(target) not in self.allowed:
                    raise FetchError(f"{url}: redirect to {target}, outside the configured bases: not followed")
                url = target
                if self.obey_robots:
                    await self._check_robots(url)
                continue
            return status, headers, body
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")

    async def _check_robots(self, url: str) -> None:
        host = origin(url)
        async with self._robots_lock:
            if host not in self._robots:
                self._robots[host] = await self._fetch_robots(host)
        parser = self._robots[host]
        if parser is None or not parser.can_fetch(self.token, url):
            reason = "unreachable or 5xx (RFC 9309: all disallowed)" if parser is None else "disallows it"
            self.stopped = (f"robots.txt of {host} {reason} for {self.token}: {url} (use --no-obey-robots only with "
                            "the site's permission)")
            raise CrawlStopped(self.stopped)

    async def _fetch_robots(self, host: str):
        try:
            status, _, body = await self._get_with_retries(f"{host}/robots.txt", robots=True)
        except FetchError:
            return None
        parser = urllib.robotparser.RobotFileParser()
        if 400 <= status < 500:
            parser.allow_all = True
        elif 200 <= status < 300:
            parser.parse(body.decode("utf-8", "replace").splitlines())
        else:
            return None
        return parser

    async def _get_with_retries(self, url: str, robots: bool = False) -> tuple[int, dict, bytes]:
        host = origin(url)
        last = ""
        for attempt in range(self.retries + 1):
            if self.stopped:
                raise CrawlStopped(self.stopped)
            wait = None
            try:
                async with self.semaphore:
                    waited = await self.limiter.wait(host)
                    if waited > 0.05:
                        self.on_wait(waited, "rate limit")
                    status, headers, body = await self._request(url)
            except (asyncio.TimeoutError, aiohttp.ClientError) as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if status == 403 and (headers.get("cf-mitigated", "").lower() == "challenge"
                                      or b"Just a moment" in body[:4096]) and not robots:
                    self.stopped = f"{url}: 403 bot challenge; stopping the crawl (no evasion)"
                    raise CrawlStopped(self.stopped)
                if status in (429, 503):
                    wait = retry_after_seconds(headers.get("Retry-After"))
                    last = f"HTTP {status}"
                    if wait is not None and wait > self.retry_after_cap:
                        raise FetchError(f"{url}: HTTP {status} with Retry-After {wait:.0f} s, over the cap")
                elif status >= 500:
                    last = f"HTTP {status}"
                else:
                    return status, headers, body
            if attempt == self.retries:
                break
            if wait is None:
                wait = min(self.backoff_cap, self.backoff * 2 ** attempt) * (0.5 + random.random() / 2)
            self.on_wait(wait, last)
            await asyncio.sleep(wait)
        if robots and last.startswith("HTTP 5"):
            return 503, {}, b""
        raise FetchError(f"{url}: {last} after {self.retries + 1} attempts")

    async def _request(self, url: str) -> tuple[int, dict, bytes]:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with self.session.get(url, allow_redirects=False, timeout=timeout,
                                    headers={"User-Agent": self.user_agent}) as resp:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > self.max_bytes:
                raise FetchError(f"{url}: body of {length} bytes is over the {self.max_bytes}-byte cap")
            chunks, size = [], 0
            async for chunk in resp.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchError(f"{url}: body over the {self.max_bytes}-byte cap")
                chunks.append(chunk)
            return resp.status, dict(resp.headers), b"".join(chunks)
