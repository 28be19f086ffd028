"""`make soak`: a bounded mixed load against a real `hub serve` on loopback, for a set time.

Run with `python -m tests.soak [--duration SECONDS] [--max-rss-growth-mib MIB]`. It builds a demo
hub in a temporary directory, starts `hub serve --demo-sources` in a child process and drives
it from several client threads at once:

- disclosures the parent's consent covers (expected 200) and requests no consent, grant or
  legal basis covers (expected 403, logged as denials);
- consent changes: give consent, disclose (200), withdraw it, disclose again (403);
- grant expiries: a coordinator grants access for a few seconds, the agency discloses (200),
  the grant runs out, the agency is refused (403).

Each expectation above is checked: any other status, or a transport error, counts as an error.
The same load runs unmeasured for a short warm-up first (ten seconds, a quarter of a shorter
run); its errors still count. At the end it prints the number of each operation, the errors,
the p50/p99 latency of the first and the last window (a minute, or a third of a shorter run)
and the server's resident memory (VmRSS from /proc) after warm-up and at the end, then
`audit log verifies` from `hub audit verify` over everything the run logged. It exits 1 if any
request failed, the log does not verify, or memory grew by more than the bound; 0 otherwise.
Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from hub.demo.people import JO, ROBIN
from tests.live_hub import (
    ALLOWED,
    DENIED,
    SCHOOL,
    UNLIMITED,
    LiveHub,
    agency_headers,
    coordinator_headers,
    open_case,
)

DEFAULT_DURATION_SECONDS = 180.0
# A hub that keeps nothing per request should hold steady once warm; a leak of even a few
# kilobytes a request crosses this within minutes.
DEFAULT_MAX_RSS_GROWTH_MIB = 64.0
DISCLOSURE_WORKERS = 2
GRANT_SECONDS = 3.0
# Access tokens live five minutes by default; renew well before.
TOKEN_RENEW_SECONDS = 120.0
# Hard cap on requests per worker, so a run stops even if the clock misbehaves.
MAX_REQUESTS_PER_WORKER = 200_000
WARMUP_SECONDS = 10.0


def warmup_seconds(duration: float) -> float:
    """Unmeasured load before the measured `duration`: ten seconds, less for short runs."""
    return min(WARMUP_SECONDS, duration / 4)


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since measuring started; negative during the warm-up
    operation: str
    seconds: float


@dataclass
class Results:
    started: float
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, operation: str, began: float, ended: float, error: str | None) -> None:
        with self.lock:
            self.samples.append(Sample(began - self.started, operation, ended - began))
            if error is not None:
                self.errors.append(f"{operation}: {error}")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: list[str]


def verdict(
    *, errors: Sequence[str], rss_growth_bytes: int, max_growth_bytes: int, log_verifies: bool
) -> Verdict:
    """Pass only with no failed request, a verifying log and memory growth within the bound."""
    problems = []
    if errors:
        problems.append(f"{len(errors)} requests failed")
    if rss_growth_bytes > max_growth_bytes:
        problems.append(
            f"server memory grew by {rss_growth_bytes / 2**20:.1f} MiB, "
            f"more than the bound of {max_growth_bytes / 2**20:.1f} MiB"
        )
    if not log_verifies:
        problems.append("the audit log does not verify")
    return Verdict(ok=not problems, problems=problems)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    # The smallest value with at least `fraction` of all values at or below it; rounding first
    # keeps 0.99 * 100 from landing just above 99.
    rank = math.ceil(round(fraction * len(ordered), 9))
    return ordered[max(0, min(len(ordered), rank) - 1)]


class Worker:
    """One client thread: a loop of one scenario until the deadline."""

    def __init__(self, hub: LiveHub, results: Results, deadline: float, name: str) -> None:
        self.hub = hub
        self.results = results
        self.deadline = deadline
        self.name = name
        self.http = httpx.Client(timeout=30)
        self._tokens: dict[str, tuple[float, dict[str, str]]] = {}

    def _token(
        self, who: str, fetch: Callable[[LiveHub, httpx.Client], dict[str, str]]
    ) -> dict[str, str]:
        got = self._tokens.get(who)
        if got is None or time.monotonic() - got[0] > TOKEN_RENEW_SECONDS:
            got = (time.monotonic(), fetch(self.hub, self.http))
            self._tokens[who] = got
        return got[1]

    def agency(self) -> dict[str, str]:
        return self._token("agency", agency_headers)

    def coordinator(self) -> dict[str, str]:
        return self._token("coordinator", coordinator_headers)

    def call(
        self,
        operation: str,
        send: Callable[[], httpx.Response],
        expect: int,
        refused_after: datetime | None = None,
    ) -> dict[str, Any] | None:
        """Send one request and check its status; with `refused_after`, a 403 answered after
        that instant is right too (the grant ran out while the request was in flight)."""
        began = time.monotonic()
        error = None
        document: dict[str, Any] | None = None
        try:
            response = send()
            late = refused_after is not None and datetime.now(UTC) >= refused_after
            if late and response.status_code == 403:
                operation = "denial, grant ran out in flight"
            elif response.status_code != expect:
                error = f"expected {expect}, got {response.status_code}: {response.text[:200]}"
            else:
                document = response.json()
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.results.record(operation, began, time.monotonic(), error)
        return document

    def disclose(
        self,
        case: str,
        body: dict[str, Any],
        expect: int,
        operation: str,
        refused_after: datetime | None = None,
    ) -> None:
        url = f"{self.hub.url}/v1/cases/{case}/disclosures"
        headers = self.agency()
        self.call(
            operation,
            lambda: self.http.post(url, headers=headers, json=body),
            expect,
            refused_after,
        )

    def run(self, step: Callable[[Worker], None]) -> None:
        try:
            for _ in range(MAX_REQUESTS_PER_WORKER):
                if time.monotonic() >= self.deadline:
                    return
                step(self)
        except Exception as exc:  # a crashed worker is an error, not a silent stop
            with self.results.lock:
                self.results.errors.append(f"{self.name} stopped: {type(exc).__name__}: {exc}")
        finally:
            self.http.close()


def disclosure_step(case: str) -> Callable[[Worker], None]:
    counter = iter(range(MAX_REQUESTS_PER_WORKER * 4))

    def step(worker: Worker) -> None:
        # Four allowed disclosures to one denial, the denial logged like any decision.
        if next(counter) % 5 == 4:
            worker.disclose(case, DENIED, 403, "denial")
        else:
            worker.disclose(case, ALLOWED, 200, "disclosure")

    return step


def consent_step(case: str) -> Callable[[Worker], None]:
    def step(worker: Worker) -> None:
        url = f"{worker.hub.url}/v1/cases/{case}/consents"
        coordinator = worker.coordinator()
        given = worker.call(
            "consent give",
            lambda: worker.http.post(
                url,
                headers=coordinator,
                json={
                    "given_by": "parent",
                    "recipients": [SCHOOL],
                    "purposes": [ALLOWED["purpose"]],
                    "categories": ALLOWED["categories"],
                    "evidence_ref": "soak-form",
                },
            ),
            201,
        )
        if given is None:
            return
        worker.disclose(case, ALLOWED, 200, "disclosure under consent")
        withdraw = f"{worker.hub.url}/v1/consents/{given['id']}/withdraw"
        worker.call(
            "consent withdraw",
            lambda: worker.http.post(withdraw, headers=coordinator, json={"reason": "soak"}),
            200,
        )
        worker.disclose(case, ALLOWED, 403, "denial after withdrawal")

    return step


def grant_step(case: str) -> Callable[[Worker], None]:
    def step(worker: Worker) -> None:
        expires = datetime.now(UTC) + timedelta(seconds=GRANT_SECONDS)
        url = f"{worker.hub.url}/v1/cases/{case}/grants"
        coordinator = worker.coordinator()
        granted = worker.call(
            "grant",
            lambda: worker.http.post(
                url,
                headers=coordinator,
                json={
                    "agency": SCHOOL,
                    "purposes": [ALLOWED["purpose"]],
                    "categories": ALLOWED["categories"],
                    "expires_at": expires.isoformat(),
                },
            ),
            201,
        )
        if granted is None:
            return
        # The policy compares times in whole seconds, so the grant ends at its second's start.
        ends = expires.replace(microsecond=0)
        worker.disclose(case, ALLOWED, 200, "disclosure under grant", refused_after=ends)
        time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds() + 0.05))
        worker.disclose(case, ALLOWED, 403, "denial after grant expiry")

    return step


def sample_memory(
    hub: LiveHub, stop: threading.Event, started: float, into: list[tuple[float, int]]
) -> None:
    while not stop.wait(1.0):
        into.append((time.monotonic() - started, hub.rss_bytes()))


@dataclass(frozen=True)
class Report:
    duration: float
    window: float
    counts: dict[str, int]
    errors: list[str]
    latency_ms: dict[str, dict[str, float]]
    rss_start_bytes: int
    rss_end_bytes: int
    rss_peak_bytes: int
    log: str
    log_verifies: bool

    @property
    def rss_growth_bytes(self) -> int:
        return self.rss_end_bytes - self.rss_start_bytes


def summarise(
    results: Results, memory: list[tuple[float, int]], duration: float, log: str, verifies: bool
) -> Report:
    window = min(60.0, duration / 3)
    first = [s.seconds for s in results.samples if 0 <= s.at < window]
    last = [s.seconds for s in results.samples if s.at >= duration - window]
    latency = {
        name: {
            "requests": float(len(values)),
            "p50": percentile(values, 0.50) * 1000,
            "p99": percentile(values, 0.99) * 1000,
        }
        for name, values in (("first window", first), ("last window", last))
    }
    # Warm-up (imports, caches, the first connections) is over after the first window; growth
    # is measured from the median there to the median of the last window, so one busy sample
    # does not decide the verdict.
    start = [rss for at, rss in memory if 0 <= at < window] or [memory[0][1]]
    end = [rss for at, rss in memory if at >= duration - window] or [memory[-1][1]]
    return Report(
        duration=duration,
        window=window,
        counts=dict(Counter(s.operation for s in results.samples)),
        errors=results.errors,
        latency_ms=latency,
        rss_start_bytes=int(statistics.median(start)),
        rss_end_bytes=int(statistics.median(end)),
        rss_peak_bytes=max(rss for _, rss in memory),
        log=log,
        log_verifies=verifies,
    )


def print_report(report: Report, result: Verdict) -> None:
    print(f"soak: {report.duration:.0f} s of mixed load on loopback")
    for name, count in sorted(report.counts.items()):
        print(f"  {name:<28} {count:>8}")
    print(f"  {'errors':<28} {len(report.errors):>8}")
    for error in report.errors[:10]:
        print(f"    {error}")
    print(f"latency over the first and last {report.window:.0f} s (all operations):")
    for name, stats in report.latency_ms.items():
        print(
            f"  {name:<14} {int(stats['requests']):>7} requests"
            f"  p50 {stats['p50']:8.1f} ms  p99 {stats['p99']:8.1f} ms"
        )
    mib = 2**20
    print(
        f"server RSS: {report.rss_start_bytes / mib:.1f} MiB after warm-up, "
        f"{report.rss_end_bytes / mib:.1f} MiB at the end "
        f"({report.rss_growth_bytes / mib:+.1f} MiB), peak {report.rss_peak_bytes / mib:.1f} MiB"
    )
    print(report.log)
    print("soak: ok" if result.ok else "soak: FAILED: " + "; ".join(result.problems))


def soak(*, workdir: Path, duration: float, database_url: str | None) -> Report:
    # The soak measures endurance, not the per-client rate limit (tested on its own): every
    # scenario speaks as the same school client, faster than a real one would.
    hub = LiveHub(workdir, database_url=database_url, settings=UNLIMITED)
    hub.demo()
    hub.start()
    memory: list[tuple[float, int]] = []
    try:
        with httpx.Client(timeout=30) as http:
            agency = agency_headers(hub, http)
            coordinator = coordinator_headers(hub, http)
            consented = open_case(hub, http, agency=agency, coordinator=coordinator)
            # One person per scenario, so each scenario's expected answers do not depend on the
            # others' consents and grants.
            churned, granted = (
                open_case(
                    hub, http, agency=agency, coordinator=coordinator, consent=False, person=p
                )
                for p in (ROBIN, JO)
            )
        # The same load runs a while before measuring starts, so that lazy start-up work (the
        # policy engine's per-thread VMs, connection pools, caches) is not counted as growth.
        results = Results(started=time.monotonic() + warmup_seconds(duration))
        deadline = results.started + duration
        steps: list[tuple[str, Callable[[Worker], None]]] = [
            *((f"disclosures-{n}", disclosure_step(consented)) for n in range(DISCLOSURE_WORKERS)),
            ("consents", consent_step(churned)),
            ("grants", grant_step(granted)),
        ]
        stop = threading.Event()
        sampler = threading.Thread(target=sample_memory, args=(hub, stop, results.started, memory))
        sampler.start()
        threads = [
            threading.Thread(target=Worker(hub, results, deadline, name).run, args=(step,))
            for name, step in steps
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stop.set()
        sampler.join()
        memory.append((time.monotonic() - results.started, hub.rss_bytes()))
    finally:
        hub.stop()
    verified = hub.cli("audit", "verify", check=False)
    log = (verified.stdout or verified.stderr).strip().splitlines()[0]
    return summarise(results, memory, duration, log, verified.returncode == 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION_SECONDS)
    parser.add_argument("--max-rss-growth-mib", type=float, default=DEFAULT_MAX_RSS_GROWTH_MIB)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hub-soak-") as tmp:
        report = soak(workdir=Path(tmp), duration=args.duration, database_url=args.database_url)
    result = verdict(
        errors=report.errors,
        rss_growth_bytes=report.rss_growth_bytes,
        max_growth_bytes=int(args.max_rss_growth_mib * 2**20),
        log_verifies=report.log_verifies,
    )
    print_report(report, result)
    if args.json is not None:
        document = {
            **{k: v for k, v in report.__dict__.items()},
            "rss_growth_bytes": report.rss_growth_bytes,
            "ok": result.ok,
            "problems": result.problems,
        }
        args.json.write_text(json.dumps(document, indent=2))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
