"""`python -m bench [--quick]`: run every benchmark, print the table, write the results."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import e2e, parts, report
from bench.load import WARM_UP_REQUESTS_PER_CONNECTION
from bench.machine import describe
from bench.procs import ROOT, settle

# One worker per core: the load generator, the demo sources and the database run on the same
# two cores, so a third worker would only add context switches and another ~100 MB.
DEFAULT_WORKERS = 2
WORKERS_REASON = (
    "one per core of this 2-core machine; the load generator, the demo's source systems and "
    "the database share the same cores, so more workers only add context switches and memory"
)
BUDGET_SECONDS = 570.0
NOTES = Path(__file__).with_name("notes.md")


@dataclass(frozen=True)
class Plan:
    concurrencies: tuple[int, ...]
    seconds: float
    max_requests: int
    growth_sizes: tuple[int, ...]
    policy_runs: int
    pseudonym_runs: int
    audit_sizes: tuple[int, ...]
    audit_writers: int
    append_seconds: float
    # The longest wait for a quiet machine before each stage (see `procs.settle`).
    settle_seconds: float


FULL = Plan(
    concurrencies=(1, 8, 32),
    seconds=5.0,
    max_requests=20_000,
    growth_sizes=(1_000, 10_000, 100_000, 1_000_000),
    policy_runs=2_000,
    pseudonym_runs=20_000,
    audit_sizes=(1_000, 10_000, 100_000, 1_000_000),
    audit_writers=16,
    append_seconds=5.0,
    settle_seconds=30.0,
)
QUICK = Plan(
    concurrencies=(1, 2),
    seconds=0.5,
    max_requests=20,
    growth_sizes=(10, 100),
    policy_runs=50,
    pseudonym_runs=200,
    audit_sizes=(100, 1_000),
    audit_writers=2,
    append_seconds=0.5,
    settle_seconds=0.5,
)


def run(
    *, plan: Plan, quick: bool, databases: list[str], workers: int, logs: Path
) -> dict[str, Any]:
    started = time.monotonic()
    postgres = "postgresql" in databases and e2e.postgres_available()
    if "postgresql" in databases and not postgres:
        print("PostgreSQL does not answer; measuring SQLite only")
    backends = ["sqlite"] * ("sqlite" in databases) + ["postgresql"] * postgres
    load = e2e.LoadPlan(plan.concurrencies, plan.seconds, plan.max_requests)
    results: dict[str, Any] = {
        "quick": quick,
        "machine": describe(e2e.postgres_admin_url() if postgres else None),
        "workers": workers,
        "workers_reason": WORKERS_REASON,
        "plan": asdict(plan) | {"warm_up_per_connection": WARM_UP_REQUESTS_PER_CONNECTION},
        "e2e": [],
    }
    stages: dict[str, float] = {}
    results["stages_s"] = stages
    # Each stage starts on a quiet machine: the one before may have left PostgreSQL work to do.
    settled: dict[str, float] = {}
    results["settled_s"] = settled
    admin_url = e2e.postgres_admin_url() if postgres else None
    # The smallest costs first, while nothing else has run yet.
    print("policy decisions and pseudonyms ...", flush=True)
    settled["policy_and_pseudonyms"] = settle(postgres_url=admin_url, timeout=plan.settle_seconds)
    stage_started = time.monotonic()
    policy = parts.policy(plan.policy_runs)
    pseudonym = parts.pseudonyms(plan.pseudonym_runs)
    stages["policy_and_pseudonyms"] = time.monotonic() - stage_started
    for backend in backends:
        print(f"end to end on {backend} ...", flush=True)
        settled[f"e2e_{backend}"] = settle(postgres_url=admin_url, timeout=plan.settle_seconds)
        stage_started = time.monotonic()
        if backend == "sqlite":
            results["e2e"].append(
                e2e.measure_backend(
                    backend=backend,
                    database_url=None,
                    workers=workers,
                    plan=load,
                    growth_sizes=plan.growth_sizes,
                    logs=logs,
                )
            )
            stages[f"e2e_{backend}"] = time.monotonic() - stage_started
            continue
        with e2e.fresh_postgres_database() as url:
            results["e2e"].append(
                e2e.measure_backend(
                    backend=backend,
                    database_url=url,
                    workers=workers,
                    plan=load,
                    growth_sizes=plan.growth_sizes,
                    logs=logs,
                )
            )
        stages[f"e2e_{backend}"] = time.monotonic() - stage_started
    print("audit log ...", flush=True)
    settled["audit"] = settle(postgres_url=admin_url, timeout=plan.settle_seconds)
    stage_started = time.monotonic()
    audit = parts.audit(
        backends,
        sizes=plan.audit_sizes,
        writers=plan.audit_writers,
        seconds=plan.append_seconds,
        deadline=started + BUDGET_SECONDS,
    )
    stages["audit"] = time.monotonic() - stage_started
    results["parts"] = {"policy": policy, "pseudonym": pseudonym, "audit": audit}
    results["duration_s"] = time.monotonic() - started
    results["targets"] = report.targets(results)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the harness")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--logs", type=Path, default=ROOT / "bench" / "results" / "logs")
    args = parser.parse_args(argv)
    args.logs.mkdir(parents=True, exist_ok=True)
    results = run(
        plan=QUICK if args.quick else FULL,
        quick=args.quick,
        databases=[d.strip() for d in args.databases.split(",") if d.strip()],
        workers=args.workers,
        logs=args.logs,
    )
    print(report.table(results))
    report.write(results, json_path=args.results, docs_path=args.docs, notes=NOTES.read_text())
    print(f"wrote {args.results} and {args.docs}")


if __name__ == "__main__":
    main()
