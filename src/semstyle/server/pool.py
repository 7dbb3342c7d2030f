"""The bounded worker pool every stylization runs in, and the counters of ``/metrics``."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor


class Busy(Exception):
    """The pool and its queue are full."""


class WorkPool:
    """A bounded pool of worker threads with a bounded queue: past ``workers + queue`` jobs, new
    ones are refused at once (HTTP 503) instead of piling up until clients time out. A slot is
    held until the work really ends, even when the client that asked for it has gone."""

    def __init__(self, workers: int, queue: int):
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="semstyle")
        self.capacity, self.pending = workers + queue, 0
        self.workers = workers
        self.lock = threading.Lock()

    def reserve(self) -> bool:
        """Take a slot, or say there is none (False)."""
        with self.lock:
            if self.pending >= self.capacity:
                return False
            self.pending += 1
            return True

    def release(self) -> None:
        with self.lock:
            self.pending -= 1

    def submit(self, func, *args) -> Future:
        """Run ``func(*args)`` in a slot already reserved; the slot is released when it ends."""
        future = self.executor.submit(func, *args)
        future.add_done_callback(lambda _: self.release())
        return future

    async def run(self, func, *args):
        """``func(*args)`` in a worker thread, awaited; raises :class:`Busy` when every slot is taken."""
        if not self.reserve():
            raise Busy
        return await asyncio.wrap_future(self.submit(func, *args))

    @property
    def queued(self) -> int:
        return max(0, self.pending - self.workers)


class Metrics:
    def __init__(self):
        self.requests: Counter = Counter()
        self.seconds: Counter = Counter()

    def observe(self, path: str, status: int, seconds: float) -> None:
        self.requests[(path, status)] += 1
        self.seconds[path] += seconds

    def text(self, pool: WorkPool, live_sessions: int = 0) -> str:
        lines = ["# TYPE semstyle_requests_total counter"]
        lines += [f'semstyle_requests_total{{path="{p}",status="{s}"}} {n}'
                  for (p, s), n in sorted(self.requests.items())]
        lines.append("# TYPE semstyle_request_seconds_total counter")
        lines += [f'semstyle_request_seconds_total{{path="{p}"}} {v:.6f}' for p, v in sorted(self.seconds.items())]
        lines += ["# TYPE semstyle_queue_length gauge", f"semstyle_queue_length {pool.queued}",
                  "# TYPE semstyle_jobs_in_progress gauge", f"semstyle_jobs_in_progress {pool.pending - pool.queued}",
                  "# TYPE semstyle_live_sessions gauge", f"semstyle_live_sessions {live_sessions}"]
        return "\n".join(lines) + "\n"
