"""The load generator: wrk, one thread, a fixed number of connections with one request each in
flight.

Run as ``python -m bench.load <spec.json>``; prints one JSON object of figures on stdout. The
spec names the URL, the JSON body, the concurrency, a time limit and a request cap, and either
a bearer token or how to get one (the demo agency's client id and key, to sign a client
assertion as the agency's own system would). wrk (Debian's package, installed by ``make venv``)
sends the requests through ``bench/load.lua``, which counts the answers by status: any answer
other than 200 counts as an error. Latency is wrk's, per request, from writing it to the last
byte of the answer.

Why wrk: the load generator shares the machine's cores with the servers it measures. An asyncio
+ httpx generator spent 2.5 to 5 ms of CPU per request here, more than the baseline server
itself, so the figures were as much its own as the servers'; wrk spends about 0.05 ms.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

WARM_UP_REQUESTS_PER_CONNECTION = 2
SCRIPT = Path(__file__).with_name("load.lua")
RESULT_PREFIX = "BENCH-RESULT "
# wrk counts a request unanswered after this long as a timeout error.
DEFAULT_TIMEOUT_SECONDS = 30
# The longest a warm-up may take before it is cut short (it normally takes well under a second).
WARM_UP_SECONDS = 30


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


@dataclass(frozen=True)
class WrkRun:
    """What one wrk run reported."""

    seconds: float
    statuses: dict[int, int]
    socket_errors: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    def error_kinds(self) -> dict[str, int]:
        """Answers other than 200 by status, and requests wrk could not complete, by kind."""
        statuses = sorted(self.statuses.items())
        kinds = {f"http_{status}": n for status, n in statuses if status != 200}
        kinds |= {f"socket_{kind}": n for kind, n in sorted(self.socket_errors.items()) if n}
        return kinds


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed; `make venv` installs it (Debian package wrk)")
    return found


def run_wrk(
    *,
    url: str,
    body: Any,
    token: str | None,
    connections: int,
    seconds: float,
    max_requests: int,
    timeout: int = DEFAULT_TIMEOUT_SECONDS,
) -> WrkRun:
    """POST ``body`` to ``url`` over ``connections`` connections until ``seconds`` pass (whole
    seconds, at least one: wrk takes no fractions) or ``max_requests`` answers arrive."""
    env = os.environ | {
        "BENCH_BODY": json.dumps(body),
        "BENCH_TOKEN": token or "",
        "BENCH_MAX_REQUESTS": str(max_requests),
    }
    args = [
        wrk_path(),
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, math.ceil(seconds))}s",
        "--timeout",
        f"{timeout}s",
        "--script",
        str(SCRIPT),
        url,
    ]
    done = subprocess.run(  # noqa: S603 (wrk, with our own script)
        args, env=env, capture_output=True, text=True, timeout=seconds + timeout + 60
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or len(lines) != 1:
        raise RuntimeError(f"wrk failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    found = json.loads(lines[0].removeprefix(RESULT_PREFIX))
    return WrkRun(
        seconds=found["window_us"] / 1e6,
        statuses={int(status): n for status, n in found["statuses"].items()},
        socket_errors=found["socket_errors"],
        p50_ms=found["p50_us"] / 1000,
        p99_ms=found["p99_us"] / 1000,
        max_ms=found["max_us"] / 1000,
    )


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Drive the endpoint at ``spec["concurrency"]`` and summarise what came back."""
    concurrency = int(spec["concurrency"])
    token = access_token(spec)
    common = {"url": spec["url"], "body": spec["body"], "token": token, "connections": concurrency}
    # Every connection's first requests are not measured, so the figures are for a server in
    # its steady state (each handler thread's policy VM loaded), as a long-running one is.
    warm_up = run_wrk(
        **common,
        seconds=WARM_UP_SECONDS,
        max_requests=WARM_UP_REQUESTS_PER_CONNECTION * concurrency,
    )
    measured = run_wrk(
        **common, seconds=float(spec["seconds"]), max_requests=int(spec["max_requests"])
    )
    errors = measured.error_kinds()
    return {
        "concurrency": concurrency,
        "requests": measured.ok + sum(errors.values()),
        "ok": measured.ok,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "warm_up_errors": warm_up.error_kinds(),
        "seconds": measured.seconds,
        "throughput_per_s": measured.ok / measured.seconds if measured.seconds > 0 else 0.0,
        "p50_ms": measured.p50_ms,
        "p99_ms": measured.p99_ms,
        "max_ms": measured.max_ms,
    }


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    print(json.dumps(run(spec)))


if __name__ == "__main__":
    main()
