"""Where a disclosure's time goes: the real `hub serve` under load, sampled by py-spy.

    python -m bench.profile [--database sqlite|postgresql] [--concurrency 32] [--seconds 10]

py-spy (a dev dependency) runs the server as its child, following the worker processes, and
samples every thread while the load generator drives the bench disclosure. Prints the
functions of this code base (and the libraries they spend the most in) by their share of
samples, inclusive and self; the raw collapsed stacks are kept next to the bench logs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from bench import e2e
from bench.procs import ROOT

OURS = ("hub/", "connectors/", "keys/", "policies/", "consent/")


def summarise(collapsed: Path, *, top: int = 30) -> str:
    """Inclusive and self shares of the functions in py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        # Idle threads (the pool waiting for work, the event loop waiting on sockets) are not cost.
        leaf = frames[-1]
        if any(
            idle in leaf for idle in ("wait (threading", "_worker (concurrent", "select (", "epoll")
        ):
            continue
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[leaf] += count
    if total == 0:
        return "no busy samples"
    lines = [f"{total} busy samples", "", "inclusive, this code base:"]
    ranked = [(f, n) for f, n in inclusive.most_common() if any(o in f for o in OURS)]
    lines += [f"{100 * n / total:6.1f}%  {f}" for f, n in ranked[:top]]
    lines += ["", "self (where the CPU actually is):"]
    lines += [f"{100 * n / total:6.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--gil", action="store_true", help="sample only the thread holding the GIL (CPU in Python)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "logs")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    collapsed = args.out / f"profile-{args.database}-{int(time.time())}.txt"
    py_spy = str(Path(sys.executable).parent / "py-spy")
    wrapper: tuple[str, ...] = (
        py_spy,
        "record",
        "--subprocesses",
        "--threads",
        "--idle",
        "--rate",
        "250",
    )
    wrapper += ("--gil",) if args.gil else ()
    wrapper += ("--format", "raw", "--output", str(collapsed), "--")
    plan = e2e.LoadPlan((args.concurrency,), args.seconds, 1_000_000)
    with ExitStack() as stack:
        url = None
        if args.database == "postgresql":
            url = stack.enter_context(e2e.fresh_postgres_database())
        site = stack.enter_context(
            e2e.hub_site(workers=args.workers, database_url=url, logs=args.out, wrapper=wrapper)
        )
        figures = e2e.generate_load(e2e.hub_spec(site, args.concurrency, plan), logs=args.out)
    print(
        f"{figures['throughput_per_s']:.1f} disclosures/s, p50 {figures['p50_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms under the profiler"
    )
    deadline = time.monotonic() + 30
    while not collapsed.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    print(summarise(collapsed))
    print(f"raw stacks: {collapsed}")


if __name__ == "__main__":
    main()
