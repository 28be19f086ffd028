"""The load generator: one process, asyncio and httpx, a fixed number of requests in flight.

Run as ``python -m bench.load <spec.json>``; prints one JSON object of figures on stdout. The
spec names the URL, the JSON body, the concurrency, a time limit and a request cap, and either
a bearer token or how to get one (the demo agency's client id and key, to sign a client
assertion as the agency's own system would). Latency is measured per request, from sending
to the last byte of the answer; any answer other than 200 counts as an error.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

WARM_UP_REQUESTS_PER_CONNECTION = 2


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    warm_up_errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def warm_up_error(self, kind: str) -> None:
        self.warm_up_errors[kind] = self.warm_up_errors.get(kind, 0) + 1


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not ordered:
        return 0.0
    rank = min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))
    return ordered[rank]


def access_token(spec: dict[str, Any]) -> str | None:
    """A fresh access token by client assertion (RFC 7523), or None for an open endpoint."""
    client = spec.get("client")
    if client is None:
        return None
    from hub.demo.assertion import make_client_assertion

    assertion = make_client_assertion(
        client_id=client["client_id"],
        kid=client["kid"],
        private_key_pem=client["private_key_pem"],
        audience=spec["token_audience"],
    )
    response = httpx.post(
        spec["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        trust_env=False,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


class Clock:
    """Starts the measured window once every connection has warmed up."""

    def __init__(self, workers: int, seconds: float) -> None:
        self._waiting = workers
        self._seconds = seconds
        self._go = asyncio.Event()
        self.started = 0.0
        self.stop_at = 0.0

    async def ready(self) -> None:
        self._waiting -= 1
        if self._waiting == 0:
            self.started = time.perf_counter()
            self.stop_at = self.started + self._seconds
            self._go.set()
        await self._go.wait()


async def _worker(
    client: httpx.AsyncClient,
    spec: dict[str, Any],
    headers: dict[str, str],
    tally: Tally,
    budget: list[int],
    clock: Clock,
) -> None:
    for _ in range(WARM_UP_REQUESTS_PER_CONNECTION):
        try:
            await client.post(spec["url"], json=spec["body"], headers=headers)
        except httpx.HTTPError as exc:
            tally.warm_up_error(type(exc).__name__)
    await clock.ready()
    while time.perf_counter() < clock.stop_at and budget[0] > 0:
        budget[0] -= 1
        start = time.perf_counter()
        try:
            response = await client.post(spec["url"], json=spec["body"], headers=headers)
        except httpx.HTTPError as exc:
            tally.error(type(exc).__name__)
            continue
        elapsed = time.perf_counter() - start
        if response.status_code == 200:
            tally.latencies.append(elapsed)
        else:
            tally.error(f"http_{response.status_code}")


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Drive the endpoint at ``spec["concurrency"]`` and summarise what came back."""
    concurrency = int(spec["concurrency"])
    token = access_token(spec)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(float(spec.get("timeout", 30.0)))
    tally = Tally()
    budget = [int(spec["max_requests"])]
    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
        # The warm-up opens every connection first, as a long-running client would have them;
        # only what follows is measured.
        clock = Clock(concurrency, float(spec["seconds"]))
        workers = [_worker(client, spec, headers, tally, budget, clock) for _ in range(concurrency)]
        await asyncio.gather(*workers)
        elapsed = time.perf_counter() - clock.started
    ordered = sorted(tally.latencies)
    completed = len(ordered) + sum(tally.errors.values())
    return {
        "concurrency": concurrency,
        "requests": completed,
        "ok": len(ordered),
        "errors": sum(tally.errors.values()),
        "error_kinds": tally.errors,
        "warm_up_errors": tally.warm_up_errors,
        "seconds": elapsed,
        "throughput_per_s": len(ordered) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": percentile(ordered, 0.50) * 1000,
        "p99_ms": percentile(ordered, 0.99) * 1000,
        "max_ms": (ordered[-1] * 1000) if ordered else 0.0,
    }


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    print(json.dumps(asyncio.run(run(spec))))


if __name__ == "__main__":
    main()
