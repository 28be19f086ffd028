"""Audit-log benchmarks: durable appends per second under concurrency (through the group-commit
writer, and one transaction per append for comparison), `verify` entries per second,
inclusion-proof time at 10^3, 10^5 and 10^6 entries, on SQLite and PostgreSQL.

Run with `python -m tests.audit.bench_audit [--sizes 1000,100000,1000000]`, which prints a
table; another harness calls `run(...)`, which returns the same figures as a dict, with each
one's ratio to the issue's target. Nothing is asserted. PostgreSQL is used when
`HUB_TEST_DATABASE_URL` (or the default test URL) answers. Timings belong here, not in tests.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, insert, text
from sqlmodel import Session

from hub.audit import merkle
from hub.audit.notes import CheckpointSigner
from hub.audit.verifier import GENESIS_HASH, chain_hash, entry_bytes, leaf_hash
from hub.services import audit, audit_tree
from hub.services.audit_writer import AuditWriter
from hub.storage.db import create_schema, make_engine
from hub.storage.models import AuditEntry, AuditNode
from tests.conftest import postgres_base_url

NOW = datetime(2025, 3, 1, tzinfo=UTC)
BODY = {"actor": "client:x", "decision": "allow", "decision_id": str(uuid.UUID(int=1))}


@contextmanager
def _database(backend: str, **kwargs: Any) -> Iterator[Engine]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{tmp}/bench.db", **kwargs)
            create_schema(engine)
            try:
                yield engine
            finally:
                engine.dispose()
        return
    base = postgres_base_url()
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    engine = make_engine(f"{base}{separator}options={quote(f'-csearch_path={schema}')}", **kwargs)
    try:
        create_schema(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _postgres_available() -> bool:
    try:
        engine = create_engine(postgres_base_url())
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


def bench_appends(
    backend: str, *, workers: int, seconds: float, group_commit: bool = True
) -> float:
    """Durable appends per second from `workers` threads: through one `AuditWriter` (group
    commit, checkpoints signed every 1,000 entries), or each append its own transaction."""
    with _database(backend, pool_size=workers + 1, max_overflow=0) as engine:
        signer = CheckpointSigner(
            origin="bench.test/audit", private_key=Ed25519PrivateKey.generate()
        )
        writer = AuditWriter(engine=engine, signer=lambda: signer) if group_commit else None
        counts = [0] * workers
        barrier = threading.Barrier(workers + 1)
        stop = [0.0]

        def work(slot: int) -> None:
            barrier.wait()
            if writer is not None:
                while time.perf_counter() < stop[0]:
                    writer.append(kind="bench", body=BODY, now=NOW)
                    counts[slot] += 1
                return
            with Session(engine) as session:
                while time.perf_counter() < stop[0]:
                    audit.append(session=session, kind="bench", body=BODY, now=NOW)
                    audit.commit(session=session)
                    counts[slot] += 1

        if writer is not None:
            writer.start()
        threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
        for thread in threads:
            thread.start()
        started = time.perf_counter()
        stop[0] = started + seconds
        barrier.wait()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        if writer is not None:
            writer.close()
        with Session(engine) as session:
            assert audit.verify(session=session).entries == sum(counts)
        return sum(counts) / elapsed


def _fill(engine: Engine, size: int, batch: int = 20_000) -> None:
    """Write a log of `size` entries straight into the tables (chain, nodes and cursor as
    `append` would), much faster than appending one by one."""
    prev = GENESIS_HASH
    at = audit.rfc3339(NOW)
    frontier: dict[merkle.NodeId, bytes] = {}
    entries: list[dict[str, object]] = []
    nodes: list[dict[str, object]] = []
    body = audit.canonical_json(BODY)
    with engine.begin() as conn:
        for seq in range(1, size + 1):
            data = entry_bytes(seq=seq, kind="bench", at=at, body=body)
            entry_hash = chain_hash(prev_hash=prev, entry=data)
            entries.append(
                {
                    "seq": seq,
                    "at": NOW,
                    "kind": "bench",
                    "body": body,
                    "prev_hash": prev,
                    "entry_hash": entry_hash,
                }
            )
            prev = entry_hash
            for node, digest in merkle.hash_completed(seq - 1, leaf_hash(data), frontier):
                nodes.append(
                    {
                        "level": node.level,
                        "idx": node.idx,
                        "digest": digest.hex(),
                        "complete_at": node.complete_at,
                    }
                )
                frontier[node] = digest
            # Only the left siblings of future leaves are needed again: the frontier's nodes.
            if seq % 4096 == 0:
                keep = set(merkle.pieces(0, seq))
                frontier = {n: h for n, h in frontier.items() if n in keep}
            if len(entries) >= batch:
                conn.execute(insert(AuditEntry), entries)
                conn.execute(insert(AuditNode), nodes)
                entries, nodes = [], []
        if entries:
            conn.execute(insert(AuditEntry), entries)
            conn.execute(insert(AuditNode), nodes)
        conn.execute(
            text("UPDATE audit_head SET size = :s, chain_hash = :h"), {"s": size, "h": prev}
        )


def _median_seconds(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_log(backend: str, size: int, *, verify: bool) -> tuple[float, float | None]:
    """(median inclusion-proof seconds, verify entries per second or None) at `size`."""
    with _database(backend) as engine:
        _fill(engine, size)
        with Session(engine) as session:
            indexes = iter(range(0, size, max(size // 997, 1)))

            def prove() -> None:
                index = next(indexes, size // 2)
                audit_tree.inclusion_proof(session, index=index, tree_size=size)

            prove()  # warm up
            proof_time = _median_seconds(prove, 200)
            rate = None
            if verify:
                start = time.perf_counter()
                report = audit.verify(session=session)  # in batches as `hub audit verify`
                rate = report.entries / (time.perf_counter() - start)
        return proof_time, rate


# The targets, for the ratios `run` reports (above 1 is better for every ratio).
TARGET_APPENDS_PER_SECOND = 3000.0
TARGET_VERIFY_PER_SECOND = 200_000.0
TARGET_PROOF_SECONDS_AT_1M = 0.005


def run(
    *,
    backends: Sequence[str] | None = None,
    sizes: Sequence[int] = (1000, 100_000, 1_000_000),
    workers: int = 16,
    seconds: float = 5.0,
    compare_one_per_transaction: bool = True,
    on_figure: Callable[[str, str, Any], None] | None = None,
) -> dict[str, Any]:
    """Measure everything; return `{backend: figures}` with each figure's ratio to its target.

    `backends` defaults to SQLite plus PostgreSQL when it answers. `verify` runs at the
    largest size only. `on_figure(backend, name, value)` hears each figure as it is measured.
    """
    if backends is None:
        backends = ["sqlite"] + (["postgresql"] if _postgres_available() else [])
    results: dict[str, Any] = {}
    for backend in backends:
        figures = _Figures(backend, on_figure)
        figures["workers"] = workers
        rate = bench_appends(backend, workers=workers, seconds=seconds)
        figures["appends_per_second"] = rate
        figures["appends_ratio_to_target"] = rate / TARGET_APPENDS_PER_SECOND
        if compare_one_per_transaction:
            single = bench_appends(backend, workers=workers, seconds=seconds, group_commit=False)
            figures["appends_per_second_one_per_transaction"] = single
            figures["group_commit_speedup"] = rate / single
        proofs: dict[int, float] = {}
        for size in sizes:
            proof, verify_rate = bench_log(backend, size, verify=size == max(sizes))
            proofs[size] = proof * 1000
            if verify_rate is not None:
                figures["verify_entries_per_second"] = verify_rate
                figures["verify_size"] = size
                figures["verify_ratio_to_target"] = verify_rate / TARGET_VERIFY_PER_SECOND
        figures["inclusion_proof_median_ms"] = proofs
        if 1_000_000 in proofs:
            figures["proof_ratio_to_target_at_1m"] = (
                TARGET_PROOF_SECONDS_AT_1M * 1000 / proofs[1_000_000]
            )
        results[backend] = figures
    return results


class _Figures(dict[str, Any]):
    """A backend's figures that reports each one as it is stored."""

    def __init__(self, backend: str, on_figure: Callable[[str, str, Any], None] | None) -> None:
        super().__init__()
        self._backend, self._on_figure = backend, on_figure

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, value)
        if self._on_figure is not None:
            self._on_figure(self._backend, name, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    run(
        sizes=[int(s) for s in args.sizes.split(",")],
        workers=args.workers,
        seconds=args.seconds,
        on_figure=_print_figure,
    )


def _print_figure(backend: str, name: str, value: Any) -> None:
    # Printed as measured: a long run under load still shows what it has.
    if isinstance(value, dict):
        for size, ms in value.items():
            print(f"{name + ', n=' + str(size):<48} {backend:<11} {ms:>14.3f}", flush=True)
    else:
        print(f"{name:<48} {backend:<11} {value:>14.2f}", flush=True)


if __name__ == "__main__":
    main()
