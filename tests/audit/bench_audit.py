"""Audit-log benchmarks: durable appends per second under concurrency, `verify` entries per
second, inclusion-proof time at 10^3, 10^5 and 10^6 entries, on SQLite and PostgreSQL.

Run with `python -m tests.audit.bench_audit [--sizes 1000,100000,1000000]`. Prints a table;
nothing is asserted. PostgreSQL is used when `HUB_TEST_DATABASE_URL` (or the default test URL)
answers. Timings belong here, not in tests.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, insert, text
from sqlmodel import Session

from hub.audit import merkle
from hub.audit.verifier import GENESIS_HASH, chain_hash, entry_bytes, leaf_hash
from hub.services import audit, audit_tree
from hub.storage.db import create_schema, make_engine
from hub.storage.models import AuditEntry, AuditNode
from tests.conftest import postgres_base_url

NOW = datetime(2025, 3, 1, tzinfo=UTC)
BODY = {"actor": "client:x", "decision": "allow", "decision_id": str(uuid.UUID(int=1))}


@contextmanager
def _database(backend: str, **kwargs: object) -> Iterator[Engine]:
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


def bench_appends(backend: str, *, workers: int, seconds: float) -> float:
    """Durable appends per second: each append its own committed transaction."""
    with _database(backend, pool_size=workers, max_overflow=0) as engine:
        stop = time.perf_counter() + seconds
        counts = [0] * workers
        barrier = threading.Barrier(workers)

        def work(slot: int) -> None:
            barrier.wait()
            with Session(engine) as session:
                while time.perf_counter() < stop:
                    audit.append(session=session, kind="bench", body=BODY, now=NOW)
                    audit.commit(session=session)
                    counts[slot] += 1

        started = time.perf_counter()
        threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
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
                report = audit.verify(session=session, batch=5000)
                rate = report.entries / (time.perf_counter() - start)
        return proof_time, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if _postgres_available() else [])
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'measure':<44} {'backend':<11} {'value':>14}")
    for backend in backends:
        rate = bench_appends(backend, workers=args.workers, seconds=args.seconds)
        print(
            f"{'durable appends/s, ' + str(args.workers) + ' workers':<44} {backend:<11} "
            f"{rate:>14.0f}"
        )
        for size in sizes:
            proof, verify_rate = bench_log(backend, size, verify=size == max(sizes))
            print(
                f"{'inclusion proof, median ms, n=' + str(size):<44} {backend:<11} "
                f"{proof * 1000:>14.3f}"
            )
            if verify_rate is not None:
                print(
                    f"{'verify entries/s, n=' + str(size):<44} {backend:<11} {verify_rate:>14.0f}"
                )


if __name__ == "__main__":
    main()
