"""Rate limits per agency client: one token bucket per client id.

The buckets live in this process's memory. With `hub serve --workers N` each worker keeps its
own buckets, so a client may reach N times the configured rate; a deployment that must hold
the limit across workers or machines puts a shared limiter in front (the load balancer or an
API gateway keyed on the client id) or replaces `RateLimiter` with one backed by a shared store.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from hub.config import Settings
from hub.errors import HubError


class RateLimited(HubError):
    """The caller used up its allowance; `retry_after` says how many seconds to wait."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets: `burst` requests at once, refilled at `per_minute` a minute.

    The clock is monotonic (not the hub's clock, which tests move), and is injectable.
    """

    def __init__(
        self, *, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_minute <= 0 or burst <= 0:
            raise ValueError("per_minute and burst must be positive")
        self.rate = per_minute / 60.0
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        # Sync handlers run in a thread pool, so two requests of one client may race here.
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst)

    def take(self, key: str) -> None:
        """Spend one token of `key`'s bucket; raises RateLimited when it is empty."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / self.rate
        raise RateLimited(
            "too many requests from this client; retry later", retry_after=max(1, math.ceil(wait))
        )
