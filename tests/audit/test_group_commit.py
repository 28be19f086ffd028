"""Group commit: the audit writer batches concurrent appends into one transaction, keeps one
gap-free order across threads and processes, fails a whole batch when its commit fails, and
signs checkpoints every N entries and after T seconds — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, event, text
from sqlmodel import Session

from hub.audit.notes import CheckpointSigner
from hub.audit.verifier import Checkpoint, verify_receipt
from hub.config import Settings
from hub.errors import AuditUnavailable
from hub.services import audit, audit_checkpoints, audit_writer, receipts
from hub.services.audit_writer import AuditWriter
from hub.storage.models import AuditEntry
from keys import KeyRing

from .append_worker import append_from_threads
from .conftest import ORIGIN, T0, FailingAuditCommits, append_entries


@pytest.fixture
def writers(engine: Engine) -> Iterator[Callable[..., AuditWriter]]:
    made: list[AuditWriter] = []

    def make(**kwargs: Any) -> AuditWriter:
        writer = AuditWriter(engine=engine, **kwargs)
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.close()


def _bodies(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT body FROM audit_entry ORDER BY seq")).scalars()
        return [json.loads(body) for body in rows]


def _checkpoint_sizes(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return [c.tree_size for c in audit_checkpoints.all_in_order(session=session)]


def _verify(engine: Engine, signer: CheckpointSigner | None = None) -> int:
    keys = [signer.verifier_key] if signer is not None else []
    with Session(engine) as session:
        return audit.verify(session=session, keys=keys, origin=ORIGIN).entries


def test_waiting_appends_are_committed_together_in_order(
    engine: Engine, writers: Callable[..., AuditWriter]
) -> None:
    append_entries(engine, 2)  # entries from the in-transaction path come first
    writer = writers()
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    futures = [
        writer.submit(kind="disclosure", body={"n": n}, now=T0 + timedelta(seconds=n))
        for n in range(10)
    ]
    assert not any(f.done() for f in futures)  # nothing is answered before the writer commits
    writer.start()
    entries = [f.result(timeout=10) for f in futures]
    assert [e.seq for e in entries] == list(range(3, 13))
    assert len(commits) == 1  # one transaction for all ten
    assert [b.get("n") for b in _bodies(engine)[2:]] == list(range(10))
    assert _verify(engine) == 12


def test_a_failed_batch_fails_every_request_in_it_and_leaves_the_log_verifying(
    engine: Engine, writers: Callable[..., AuditWriter], signer: CheckpointSigner
) -> None:
    # The clock stands still, so no timed checkpoint is due.
    writer = writers(signer=lambda: signer, checkpoint_every=4, clock=lambda: T0)
    writer.start()
    writer.append(kind="disclosure", body={"n": "before"}, now=T0)
    writer.close()  # a fresh writer that does not start until the batch is queued
    writer = writers(signer=lambda: signer, checkpoint_every=4, clock=lambda: T0)
    futures: list[Future[AuditEntry]] = [
        writer.submit(kind="disclosure", body={"n": n}, now=T0, checkpoint=True) for n in range(6)
    ]
    with FailingAuditCommits(engine) as failing:
        writer.start()
        for future in futures:
            with pytest.raises(AuditUnavailable, match="could not be made durable"):
                future.result(timeout=10)
        assert failing.refused == 1  # one batch, and every waiter got its error
    # Nothing of the batch was written: no entry, no cursor move, no checkpoint.
    assert [b["n"] for b in _bodies(engine)] == ["before"]
    assert _checkpoint_sizes(engine) == []
    assert _verify(engine, signer) == 1
    # The writer recovers: the next entry takes the next number, with no gap.
    after = writer.append(kind="disclosure", body={"n": "after"}, now=T0)
    assert after.seq == 2
    assert _verify(engine, signer) == 2


def test_appends_from_threads_and_two_processes_leave_one_gap_free_log(
    database_url: str, engine: Engine
) -> None:
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(2)
    workers = [
        spawn.Process(
            target=append_from_threads,
            args=(database_url,),
            kwargs={"worker": f"p{n}", "threads": 6, "per_thread": 15, "start": start},
        )
        for n in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    bodies = _bodies(engine)
    assert sorted((b["worker"], b["thread"], b["i"]) for b in bodies) == sorted(
        (f"p{w}", t, i) for w in range(2) for t in range(6) for i in range(15)
    )
    # Each thread's own entries keep the order it appended them in.
    for w in range(2):
        for t in range(6):
            mine = [b["i"] for b in bodies if (b["worker"], b["thread"]) == (f"p{w}", t)]
            assert mine == list(range(15))
    assert _verify(engine) == 180  # seq 1..180, chain, tree and cursor all agree


def test_a_writer_that_finds_another_writers_entries_goes_straight_to_the_cursor_lock(
    engine: Engine, writers: Callable[..., AuditWriter]
) -> None:
    # Two writers on one database stand for two worker processes. On PostgreSQL a writer that
    # kept the log's edge first tries one conditional statement; after another writer's batch
    # that statement would be refused, so the next batch takes the cursor's lock directly, and
    # the one after that, finding the log as it left it, tries the one statement again.
    first, second = writers(), writers()
    tried: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("WITH head AS"):
            tried.append("conditional")
        elif statement.startswith("UPDATE audit_head SET size"):
            tried.append("lock")

    event.listen(engine, "before_cursor_execute", note)

    def append_with(writer: AuditWriter, n: int) -> list[str]:
        tried.clear()
        writer.append(kind="disclosure", body={"n": n}, now=T0 + timedelta(seconds=n))
        return list(tried)

    append_with(first, 1)
    append_with(first, 2)
    append_with(second, 3)
    refused_once = append_with(first, 4)
    straight_to_lock = append_with(first, 5)
    conditional_again = append_with(first, 6)
    if engine.dialect.name == "postgresql":
        assert refused_once == ["conditional", "lock"]
        assert straight_to_lock == ["lock"]
        assert conditional_again == ["conditional"]
    else:  # SQLite always takes its one write lock first
        assert refused_once == straight_to_lock == conditional_again == ["lock"]
    assert [b["n"] for b in _bodies(engine)] == [1, 2, 3, 4, 5, 6]
    assert _verify(engine) == 6


def test_checkpoints_every_n_entries_and_for_receipts_are_signed_in_the_batch(
    engine: Engine, writers: Callable[..., AuditWriter], signer: CheckpointSigner
) -> None:
    writer = writers(signer=lambda: signer, checkpoint_every=4, clock=lambda: T0)
    futures = [writer.submit(kind="denial", body={"n": n}, now=T0) for n in range(9)]
    futures.append(writer.submit(kind="disclosure", body={"n": 9}, now=T0, checkpoint=True))
    writer.start()
    for future in futures:
        future.result(timeout=10)
    assert _checkpoint_sizes(engine) == [4, 8, 10]
    with Session(engine) as session:
        latest = audit_checkpoints.latest(session=session)
        assert latest is not None
        parsed = Checkpoint.from_text(latest.note, key=signer.verifier_key, origin=ORIGIN)
        assert parsed.root_hash.hex() == audit.verify(session=session).root_hash
    assert _verify(engine, signer) == 10


def test_a_timed_checkpoint_appears_after_t_seconds_when_traffic_stops(
    engine: Engine, writers: Callable[..., AuditWriter], signer: CheckpointSigner
) -> None:
    clock = [T0]
    writer = writers(
        signer=lambda: signer,
        checkpoint_seconds=5,
        poll_seconds=0.01,
        clock=lambda: clock[0],
    )
    writer.start()
    for n in range(3):
        writer.append(kind="disclosure", body={"n": n}, now=T0)
    clock[0] = T0 + timedelta(seconds=4.9)
    time.sleep(0.1)  # the idle writer has looked several times: not due yet
    assert _checkpoint_sizes(engine) == []
    # Entries written inside other transactions (a case change) are covered too.
    append_entries(engine, 2)
    clock[0] = T0 + timedelta(seconds=5)
    deadline = time.monotonic() + 5
    while not _checkpoint_sizes(engine) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _checkpoint_sizes(engine) == [5]
    assert _verify(engine, signer) == 5


def test_the_timed_rule_counts_from_the_oldest_entry_no_checkpoint_covers(
    engine: Engine, writers: Callable[..., AuditWriter], signer: CheckpointSigner
) -> None:
    clock: list[datetime] = [T0]
    writer = writers(signer=lambda: signer, checkpoint_seconds=60, clock=lambda: clock[0])
    assert writer.checkpoint_if_due() is None  # an empty log needs no checkpoint
    writer.start()
    writer.append(kind="denial", body={"n": 0}, now=T0, checkpoint=True)
    writer.append(kind="denial", body={"n": 1}, now=T0 + timedelta(seconds=30))
    clock[0] = T0 + timedelta(seconds=89)
    assert writer.checkpoint_if_due() is None  # entry 2 has waited 59 s
    clock[0] = T0 + timedelta(seconds=90)
    assert writer.checkpoint_if_due() == 2
    assert writer.checkpoint_if_due() is None  # covered now
    assert _checkpoint_sizes(engine) == [1, 2]


def test_the_settings_set_the_cadence_of_the_process_writer(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_AUDIT_CHECKPOINT_EVERY", "3")
    monkeypatch.setenv("HUB_AUDIT_CHECKPOINT_SECONDS", "3600")
    settings = Settings(data_dir=tmp_path)
    assert (settings.audit_checkpoint_every, settings.audit_checkpoint_seconds) == (3, 3600)
    now = datetime.now(UTC)  # entries of now: no timed checkpoint within the hour
    keyring = KeyRing.create(tmp_path / "keystore.json", master_key=bytes(32))
    writer = audit_writer.writer_for(engine=engine, settings=settings, keyring=keyring)
    try:
        assert audit_writer.writer_for(engine=engine, settings=settings, keyring=keyring) is writer
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: writer.append(kind="denial", body={"n": n}, now=now), range(7)))
        assert _checkpoint_sizes(engine) == [3, 6]
        keys, origin = audit_checkpoints.verifier_keys(keyring=keyring, settings=settings)
        with Session(engine) as session:
            assert audit.verify(session=session, keys=keys, origin=origin).entries == 7
    finally:
        audit_writer.close_for(engine)
    with pytest.raises(AuditUnavailable, match="stopped"):
        writer.append(kind="denial", body={}, now=T0)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("HUB_AUDIT_CHECKPOINT_EVERY", "0", "greater than or equal to 1"),
        ("HUB_AUDIT_CHECKPOINT_EVERY", "often", "valid integer"),
        ("HUB_AUDIT_CHECKPOINT_EVERY", "2000000", "less than or equal to 1000000"),
        ("HUB_AUDIT_CHECKPOINT_SECONDS", "0", "greater than or equal to 0.1"),
        ("HUB_AUDIT_CHECKPOINT_SECONDS", "-5", "greater than or equal to 0.1"),
        ("HUB_AUDIT_CHECKPOINT_SECONDS", "soon", "valid number"),
        ("HUB_AUDIT_CHECKPOINT_SECONDS", "100000", "less than or equal to 86400"),
    ],
)
def test_bad_cadence_settings_are_refused_with_a_clear_error(
    name: str, value: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    field = name.removeprefix("HUB_").lower()
    with pytest.raises(ValidationError, match=rf"(?s){field}.*{problem}"):
        Settings()


def test_a_writer_refuses_a_cadence_it_cannot_keep(engine: Engine) -> None:
    with pytest.raises(ValueError, match=r"checkpoint_every must be at least 1, got 0"):
        AuditWriter(engine=engine, checkpoint_every=0)
    with pytest.raises(ValueError, match=r"checkpoint_seconds must be at least 0\.1, got 0"):
        AuditWriter(engine=engine, checkpoint_seconds=0)


def test_closing_writes_what_is_queued_and_refuses_what_comes_after(
    engine: Engine, writers: Callable[..., AuditWriter]
) -> None:
    writer = writers()
    futures = [writer.submit(kind="denial", body={"n": n}, now=T0) for n in range(3)]
    writer.start()
    writer.close()
    assert [f.result(timeout=1).seq for f in futures] == [1, 2, 3]
    with pytest.raises(AuditUnavailable, match="stopped"):
        writer.submit(kind="denial", body={}, now=T0)
    assert _verify(engine) == 3


def test_many_threads_share_batches_and_get_distinct_entries(
    engine: Engine, writers: Callable[..., AuditWriter]
) -> None:
    writer = writers()
    writer.start()
    go = threading.Barrier(16)

    def run(n: int) -> list[int]:
        go.wait()
        return [writer.append(kind="denial", body={"t": n, "i": i}, now=T0).seq for i in range(20)]

    with ThreadPoolExecutor(16) as pool:
        seqs = [s for got in pool.map(run, range(16)) for s in got]
    assert sorted(seqs) == list(range(1, 321))
    assert _verify(engine) == 320


def test_a_writer_closed_before_it_started_fails_what_was_queued(
    writers: Callable[..., AuditWriter],
) -> None:
    writer = writers()
    future = writer.submit(kind="denial", body={}, now=T0)
    writer.close()
    with pytest.raises(AuditUnavailable, match="stopped"):
        future.result(timeout=1)


def test_receipts_from_a_shared_batch_verify_offline_against_stored_checkpoints(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_AUDIT_CHECKPOINT_EVERY", "5")
    monkeypatch.setenv("HUB_AUDIT_CHECKPOINT_SECONDS", "3600")
    settings = Settings(data_dir=tmp_path, public_url="https://hub.test")
    keyring = KeyRing.create(tmp_path / "keystore.json", master_key=bytes(32))
    signer = audit_checkpoints.signer_for(keyring=keyring, settings=settings)
    keys, origin = audit_checkpoints.verifier_keys(keyring=keyring, settings=settings)
    now = datetime.now(UTC)
    writer = audit_writer.writer_for(engine=engine, settings=settings, keyring=keyring)

    def disclose(n: int) -> dict[str, Any]:
        entry = writer.append(kind="disclosure", body={"n": n}, now=now, checkpoint=True)
        with Session(engine) as session:
            receipt = receipts.issue(
                session=session,
                signer=signer,
                entry=entry,
                decision_id=f"d-{n}",
                payload_digest=f"sha256:{n}",
                now=now,
            )
        return receipt.model_dump()

    try:
        with ThreadPoolExecutor(8) as pool:
            issued = list(pool.map(disclose, range(12)))
        append_entries(engine, 3)  # another appender moves the log on between batches
        issued.append(disclose(12))
    finally:
        audit_writer.close_for(engine)
    with Session(engine) as session:
        stored = {c.tree_size: c.note for c in audit_checkpoints.all_in_order(session=session)}
        assert audit.verify(session=session, keys=keys, origin=origin).entries == 16
    for n, receipt in enumerate(issued):
        verified = verify_receipt(receipt, key=keys[0], origin=origin)
        assert verified.decision_id == f"d-{n}"
        # The checkpoint a receipt carries is the one the log keeps for that size.
        assert stored[verified.checkpoint.tree_size] == receipt["checkpoint"]
    assert verify_receipt(issued[-1], key=keys[0], origin=origin).index == 15
