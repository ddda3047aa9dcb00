"""Per-client rate limiting for the service: a token bucket per client."""
import time


class RateLimiter:
    """A token bucket per client: ``rate`` requests per second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic, max_clients: int = 100_000):
        self.rate, self.burst, self.clock, self.max_clients = rate, burst, clock, max_clients
        self.buckets: dict[str, tuple[float, float]] = {}

    def check(self, client: str) -> float:
        """0 when allowed (a token is taken), else the seconds until the next token."""
        if not self.rate:
            return 0.0
        now = self.clock()
        tokens, last = self.buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate
        if len(self.buckets) >= self.max_clients and client not in self.buckets:
            full = [k for k, (t, s) in self.buckets.items() if t + (now - s) * self.rate >= self.burst]
            for k in full:  # clients back at a full bucket carry no state worth keeping
                del self.buckets[k]
        self.buckets[client] = (tokens - 1, now)
        return 0.0
