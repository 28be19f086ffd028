"""The parts of a disclosure, each timed on its own.

- policy decision: the embedded Rego engine and the real OPA evaluator in process (as
  ``tests.policies.bench`` measures them), and the hub's remote OPA mode (``RemoteOpaPolicyEngine``)
  against the OPA-compatible test server running in a process of its own;
- pseudonym derivation through the keyring, each call for a different subject;
- the audit log, through the audit log's own benchmark functions
  (``tests.audit.bench_audit``): durable appends per second under concurrency, ``verify``
  entries per second and inclusion-proof time at each log size, on each database.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.procs import PYTHON, ROOT, free_port, running
from keys import KeyRing
from tests.policies import bench as policy_bench

PSEUDONYM_DOMAIN = "agency:northtown-academy"


def policy(runs: int) -> dict[str, Any]:
    """Median and p99 µs of a decision: embedded, OPA in process, and OPA over HTTP."""
    result = policy_bench.main(runs)
    result["remote_opa"] = remote_opa(max(runs // 4, 50))
    return result


@contextmanager
def _opa_server(logs: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        [PYTHON, "-m", "bench.servers", "opa", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        log=logs / "opa.log",
        ready_url=f"{url}/health",
    ):
        yield url


def remote_opa(runs: int) -> dict[str, float]:
    """The hub's remote mode end to end: serialise, POST to the Data API, parse, validate."""
    from hub.policy import RemoteOpaPolicyEngine

    inputs = policy_bench.typed_inputs()
    with (
        tempfile.TemporaryDirectory() as tmp,
        _opa_server(Path(tmp)) as url,
        RemoteOpaPolicyEngine.from_url(url, timeout=5.0) as engine,
    ):
        return policy_bench.summary(policy_bench.timed(engine.decide, inputs, runs))


def pseudonyms(runs: int) -> dict[str, float]:
    """µs per pseudonym, a new subject id each time (no repeated input)."""
    with tempfile.TemporaryDirectory() as tmp:
        keyring = KeyRing.create(Path(tmp) / "keystore.json", master_key=os.urandom(32))
        values = [str(uuid.uuid4()) for _ in range(runs)]
        samples = _timed(lambda v: keyring.pseudonym(domain=PSEUDONYM_DOMAIN, value=v), values)
        return policy_bench.summary(samples)


def _timed(fn: Callable[[str], object], values: list[str]) -> list[float]:
    samples = []
    for value in values:
        start = time.perf_counter()
        fn(value)
        samples.append(time.perf_counter() - start)
    return samples


def _projected_seconds(done: list[dict[str, Any]], size: int) -> float:
    """Time a log of ``size`` entries will take, from the sizes done so far on one backend.

    With two sizes done, a fixed cost plus a cost per entry; with one, proportional to size
    (an overestimate, since that size's time is mostly fixed cost).
    """
    if len(done) >= 2:
        small, large = done[-2], done[-1]
        per_entry = max(
            (large["took_s"] - small["took_s"]) / (large["entries"] - small["entries"]), 0.0
        )
        fixed = max(large["took_s"] - per_entry * large["entries"], 0.0)
        return float(fixed + per_entry * size)
    return float(done[-1]["took_s"] * size / done[-1]["entries"])


def audit(
    backends: list[str],
    *,
    sizes: tuple[int, ...],
    writers: int,
    seconds: float,
    deadline: float,
) -> dict[str, Any]:
    """Appends/s with ``writers`` concurrent writers; proof ms and verify entries/s per size.

    Sizes go smallest first, each on every backend before the next, so the larger sizes are
    the ones left out when time runs short: a size whose projected time would end after
    ``deadline`` (a ``time.monotonic()`` value) is skipped on that backend, and said so.
    """
    from tests.audit import bench_audit

    found: dict[str, Any] = {
        backend: {
            "appends_per_s": bench_audit.bench_appends(backend, workers=writers, seconds=seconds),
            "writers": writers,
            "logs": [],
            "skipped": [],
        }
        for backend in backends
    }
    for size in sorted(sizes):
        for backend in backends:
            done, skipped = found[backend]["logs"], found[backend]["skipped"]
            left = deadline - time.monotonic()
            projected = _projected_seconds(done, size) if done else 0.0
            if skipped or projected > left:
                reason = (
                    "a smaller size was already left out"
                    if skipped
                    else f"would take about {projected:.0f} s; {max(left, 0):.0f} s of the "
                    "run's time budget were left"
                )
                skipped.append({"entries": size, "reason": reason})
                continue
            started = time.perf_counter()
            proof_seconds, verify_rate = bench_audit.bench_log(backend, size, verify=True)
            done.append(
                {
                    "entries": size,
                    "proof_ms": proof_seconds * 1000,
                    "verify_entries_per_s": verify_rate,
                    "took_s": time.perf_counter() - started,
                }
            )
    return found
