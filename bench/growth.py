"""Growth: how a disclosure's latency and an inclusion proof's time change as the hub fills up.

The running hub's database is seeded in bulk with direct inserts (one ``INSERT ... SELECT``
per table and step, copying the bench case's own rows under new ids): more subjects, cases and
one active consent per case; and the audit log is grown to the same number of entries, each
chained and in the Merkle tree as an append would leave it (``extend_log``). After each step
the load generator asks for the bench case's disclosure one request at a time (each one
appended to that log and receipted with a proof from it), and an inclusion proof is made at
the log's current size with the hub's own tree code.

A step whose projected seeding time does not fit the budget is skipped and said so.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Connection, Engine, Table, create_engine, insert, text
from sqlmodel import Session

from bench.e2e import LoadPlan, Site, generate_load, hub_spec
from hub.audit import merkle
from hub.audit.verifier import Frontier, chain_hash, entry_bytes, leaf_hash
from hub.services import audit, audit_tree
from hub.storage.models import AuditEntry, AuditNode, Case, Consent, Subject

SEED_BUDGET_SECONDS = 120.0
GROWTH_REQUESTS = 300


def _id_expr(engine: Engine, prefix: str) -> str:
    if engine.dialect.name == "postgresql":
        return f"'{prefix}' || lpad(n.i::text, 8, '0')"
    return f"printf('{prefix}%08d', n.i)"


def _copy_rows(
    engine: Engine,
    table: Table,
    *,
    source_id: str,
    start: int,
    stop: int,
    overrides: dict[str, str],
) -> None:
    """Insert copies ``start..stop-1`` of ``table``'s row ``source_id``, some columns replaced."""
    quote = engine.dialect.identifier_preparer.quote
    columns: list[Column[Any]] = list(table.columns)
    names = ", ".join(quote(c.name) for c in columns)
    values = ", ".join(overrides.get(c.name, f"t.{quote(c.name)}") for c in columns)
    where = "t.id = :source"
    if engine.dialect.name == "postgresql":
        series = "generate_series(CAST(:start AS integer), CAST(:last AS integer)) AS n(i)"
        sql = f"INSERT INTO {quote(table.name)} ({names}) SELECT {values} FROM {quote(table.name)} t, {series} WHERE {where}"  # noqa: E501, S608 (names from our own models)
    else:
        series = "n(i) AS (SELECT :start UNION ALL SELECT i + 1 FROM n WHERE i < :last)"
        sql = f"WITH RECURSIVE {series} INSERT INTO {quote(table.name)} ({names}) SELECT {values} FROM {quote(table.name)} t, n WHERE {where}"  # noqa: E501, S608
    with engine.begin() as conn:
        conn.execute(text(sql), {"source": source_id, "start": start, "last": stop - 1})


def _scalar(engine: Engine, sql: str, **params: object) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def seed(engine: Engine, *, case_id: str, start: int, stop: int) -> None:
    """Add subjects, cases and consents numbered ``start..stop-1``, copies of the bench case's."""
    subject_id = _scalar(engine, 'SELECT subject_id FROM "case" WHERE id = :c', c=case_id)
    consent_id = _scalar(engine, "SELECT min(id) FROM consent WHERE case_id = :c", c=case_id)
    subject = _id_expr(engine, "bs-")
    cases = _id_expr(engine, "bc-")
    consents = _id_expr(engine, "bk-")
    copies = (
        (Subject, subject_id, {"id": subject, "identity_index": subject}),
        (Case, case_id, {"id": cases, "subject_id": subject}),
        (Consent, consent_id, {"id": consents, "case_id": cases, "subject_id": subject}),
    )
    for model, source_id, overrides in copies:
        _copy_rows(
            engine,
            model.__table__,  # type: ignore[union-attr]
            source_id=source_id,
            start=start,
            stop=stop,
            overrides=overrides,
        )


# What the seeded log entries say: a kind of their own and references only, like any entry.
SEEDED_KIND = "bench_seed"
SEEDED_BODY = {"actor": "bench", "note": "seeded to grow the log"}
LOG_BATCH = 20_000


def extend_log(engine: Engine, *, to_size: int, at: datetime) -> None:
    """Append seeded entries until the log holds ``to_size``, as the hub's own appends would.

    Each entry is chained to the one before and is a leaf of the Merkle tree, whose completed
    nodes are written alongside, starting from the stored frontier; the head moves in the same
    transaction. The hub's running workers see a log that grew under them, as they would with
    another worker appending.
    """
    stamp = audit.rfc3339(at)
    body = audit.canonical_json(SEEDED_BODY)
    with engine.begin() as conn:
        # Moving the head first takes the log's lock, as every append does.
        conn.execute(text("UPDATE audit_head SET size = size WHERE id = 1"))
        size, prev = conn.execute(text("SELECT size, chain_hash FROM audit_head")).one()
        frontier = Frontier(size, [_stored_hash(conn, node) for node in _frontier_ids(size)])
        entries: list[dict[str, Any]] = []
        nodes: list[dict[str, Any]] = []
        for seq in range(size + 1, to_size + 1):
            data = entry_bytes(seq=seq, kind=SEEDED_KIND, at=stamp, body=body)
            link = chain_hash(prev_hash=prev, entry=data)
            entries.append(
                {
                    "seq": seq,
                    "at": at,
                    "kind": SEEDED_KIND,
                    "body": body,
                    "prev_hash": prev,
                    "entry_hash": link,
                }
            )
            prev = link
            completed = zip(
                merkle.completed_by(seq - 1), frontier.append(leaf_hash(data)), strict=True
            )
            nodes.extend(
                {"level": n.level, "idx": n.idx, "digest": h.hex(), "complete_at": n.complete_at}
                for n, h in completed
            )
            if len(entries) >= LOG_BATCH:
                _write_log_rows(conn, entries, nodes)
                entries, nodes = [], []
        _write_log_rows(conn, entries, nodes)
        conn.execute(
            text("UPDATE audit_head SET size = :size, chain_hash = :prev WHERE id = 1"),
            {"size": max(size, to_size), "prev": prev},
        )


def _frontier_ids(size: int) -> list[merkle.NodeId]:
    return merkle.pieces(0, size) if size else []


def _stored_hash(conn: Connection, node: merkle.NodeId) -> bytes:
    digest = conn.execute(
        text("SELECT digest FROM audit_node WHERE level = :level AND idx = :idx"),
        {"level": node.level, "idx": node.idx},
    ).scalar_one()
    return bytes.fromhex(digest)


def _write_log_rows(
    conn: Connection, entries: list[dict[str, Any]], nodes: list[dict[str, Any]]
) -> None:
    if entries:
        conn.execute(insert(AuditEntry), entries)
        conn.execute(insert(AuditNode), nodes)


def _counts(engine: Engine) -> dict[str, int]:
    return {
        "cases": int(_scalar(engine, 'SELECT count(*) FROM "case"')),
        "consents": int(_scalar(engine, "SELECT count(*) FROM consent")),
        "log_entries": int(_scalar(engine, "SELECT size FROM audit_head")),
    }


def proof_ms(engine: Engine, size: int, runs: int = 50) -> float:
    """Median inclusion-proof time at the log's current size, spread over its leaves."""
    samples = []
    with Session(engine) as session:
        for k in range(runs):
            index = (k * 7919) % size
            start = time.perf_counter()
            audit_tree.inclusion_proof(session, index=index, tree_size=size)
            samples.append(time.perf_counter() - start)
    samples.sort()
    return samples[len(samples) // 2] * 1000


def measure_growth(
    site: Site, *, database_url: str, sizes: tuple[int, ...], plan: LoadPlan, logs: Any
) -> dict[str, Any]:
    """Disclosure latency (concurrency 1) and proof time at each seeded size."""
    engine = create_engine(database_url)
    steps: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    seeded = 0
    seconds_per_row = 0.0
    spent = 0.0
    try:
        for size in sizes:
            rows = size - seeded
            projected = rows * seconds_per_row
            if seconds_per_row and spent + projected > SEED_BUDGET_SECONDS:
                skipped.append(
                    {
                        "cases": size,
                        "reason": f"seeding would take about {projected:.0f} s more; the budget "
                        f"for seeding is {SEED_BUDGET_SECONDS:.0f} s",
                    }
                )
                break
            started = time.perf_counter()
            seed(engine, case_id=site.case_id, start=seeded + 1, stop=size + 1)
            extend_log(engine, to_size=size, at=datetime.now(UTC))
            took = time.perf_counter() - started
            spent += took
            seconds_per_row = took / rows
            seeded = size
            counts = _counts(engine)
            one_plan = LoadPlan(
                concurrencies=(1,),
                seconds=min(plan.seconds, 3.0),
                max_requests=min(plan.max_requests, GROWTH_REQUESTS),
            )
            latency = generate_load(hub_spec(site, 1, one_plan), logs=logs)
            steps.append(
                counts
                | {
                    "seed_seconds": took,
                    "p50_ms": latency["p50_ms"],
                    "p99_ms": latency["p99_ms"],
                    "errors": latency["errors"],
                    "requests": latency["requests"],
                    "proof_ms": proof_ms(engine, counts["log_entries"]),
                }
            )
    finally:
        engine.dispose()
    return {"steps": steps, "skipped": skipped}
