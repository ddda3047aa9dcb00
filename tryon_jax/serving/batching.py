"""Micro-batching for serving: concurrent requests are gathered into one model call.

A request waits at most ``max_wait_s`` for others to join it, and a batch holds at most
``max_batch``; while the model runs, new requests queue up and form the next batch, so under
load batches fill without waiting. The model runs in one worker thread (the event loop stays
free); each request gets its own result back, in the order of its batch.
"""
import asyncio
import collections
import concurrent.futures
import time


class MicroBatcher:
    def __init__(self, fn, max_batch: int = 8, max_wait_s: float = 0.01):
        """``fn(items: list) -> list of results`` (same length and order), run in a worker thread."""
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self.fn, self.max_batch, self.max_wait_s = fn, max_batch, max_wait_s
        self._pending = collections.deque()
        self._wake = None
        self._task = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.batch_sizes = collections.Counter()
        self.busy_s = 0.0

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for _, future in self._pending:
            if not future.done():
                future.set_exception(RuntimeError("the server is shutting down"))
        self._pool.shutdown(wait=True)

    async def submit(self, item):
        """The model's result for ``item`` (raises what the model raised for its batch)."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._pending:
                continue
            deadline = loop.time() + self.max_wait_s
            while len(self._pending) < self.max_batch and loop.time() < deadline:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), deadline - loop.time())
                except TimeoutError:
                    break
            batch = [self._pending.popleft() for _ in range(min(self.max_batch, len(self._pending)))]
            batch = [(item, f) for item, f in batch if not f.cancelled()]  # callers that timed out
            if self._pending:
                self._wake.set()  # the rest form the next batch right away
            if not batch:
                continue
            t0 = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._pool, self.fn, [item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"the model returned {len(results)} results for {len(batch)} requests")
            except Exception as e:  # every request of the batch gets the error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            finally:
                self.busy_s += time.perf_counter() - t0
                self.batch_sizes[len(batch)] += 1
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)

    def stats(self) -> dict:
        batches = sum(self.batch_sizes.values())
        items = sum(k * v for k, v in self.batch_sizes.items())
        return {"batches": batches, "items": items, "mean_batch": items / batches if batches else 0.0,
                "max_batch": self.max_batch, "max_wait_ms": self.max_wait_s * 1000, "model_busy_s": self.busy_s}
