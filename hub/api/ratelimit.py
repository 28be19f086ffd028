"""Rate limits per agency client: one token bucket per client id; and for `POST /v1/token`,
one per client id named by the assertion and one per remote address for the rest.

The buckets live in this process's memory. With `hub serve --workers N` each worker keeps its
own buckets, so a client may reach N times the configured rate; a deployment that must hold
the limit across workers or machines puts a shared limiter in front (the load balancer or an
API gateway keyed on the client id) or replaces `RateLimiter` with one backed by a shared store.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from hub.config import Settings
from hub.errors import HubError

# A bucket table is first swept of refilled buckets when it reaches this many keys.
_FIRST_SWEEP = 1024


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
        self,
        *,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        message: str = "too many requests from this client; retry later",
    ) -> None:
        if per_minute <= 0 or burst <= 0:
            raise ValueError("per_minute and burst must be positive")
        self.rate = per_minute / 60.0
        self.burst = burst
        self.clock = clock
        self.message = message
        self._buckets: dict[str, _Bucket] = {}
        # Keys may come from outside (remote addresses): refilled buckets are dropped whenever
        # the table has doubled since the last sweep, so it holds only recently busy keys.
        self._sweep_at = _FIRST_SWEEP
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
                if len(self._buckets) >= self._sweep_at:
                    self._sweep(now)
                bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / self.rate
        raise RateLimited(self.message, retry_after=max(1, math.ceil(wait)))

    def __len__(self) -> int:
        """How many keys have a bucket now."""
        with self._lock:
            return len(self._buckets)

    def _sweep(self, now: float) -> None:
        """Drop buckets that have refilled: a full bucket is the same as none. Lock held."""
        full = [
            key
            for key, b in self._buckets.items()
            if b.tokens + max(0.0, now - b.updated) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        self._sweep_at = max(_FIRST_SWEEP, 2 * len(self._buckets))


def address_key(host: str | None) -> str:
    """The rate-limit key of a remote address: an IPv6 address by its /64 (one host usually
    has the whole /64, so single addresses would give it millions of buckets)."""
    if not host:
        return "address:unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"address:{host[:64]}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"address:{address.ipv4_mapped}"
        return f"address:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"address:{address}"


class TokenRateLimits:
    """`POST /v1/token`: checked before the client assertion's signature, which costs far more
    than a lookup. An assertion naming a registered client spends from that client's bucket;
    any other (unknown client, unreadable assertion) from the looser bucket of the remote
    address, so inventing client ids gets an attacker no fresh allowance."""

    def __init__(self, *, per_client: RateLimiter, per_address: RateLimiter) -> None:
        self.per_client = per_client
        self.per_address = per_address

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenRateLimits:
        message = "too many token requests; retry later"
        return cls(
            per_client=RateLimiter(
                per_minute=settings.token_rate_limit_per_minute,
                burst=settings.token_rate_limit_burst,
                message=message,
            ),
            per_address=RateLimiter(
                per_minute=settings.token_address_rate_limit_per_minute,
                burst=settings.token_address_rate_limit_burst,
                message=message,
            ),
        )

    def take(self, *, registered_client: str | None, remote_host: str | None) -> None:
        """Spend one token request; raises RateLimited when the bucket it falls on is empty."""
        if registered_client is not None:
            self.per_client.take(registered_client)
        else:
            self.per_address.take(address_key(remote_host))
