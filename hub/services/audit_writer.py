"""Group commit for the audit log: one writer per process batches concurrent appends.

A request hands its entry to the writer and waits. The writer's thread takes everything that
is waiting (up to `max_batch` entries) and, in one transaction, moves the log's cursor on by n,
writes the n entries with their chain links and tree nodes, signs the checkpoints that are due,
and commits once. Only then is each waiting request released with its entry. If anything in
the batch fails, the transaction is rolled back and every request in it gets AuditUnavailable:
no answer leaves before its entry is durable, and a failed batch discloses nothing.

Order across processes: a batch's first write moves the shared cursor (`audit.advance_head`),
which holds SQLite's write lock or PostgreSQL's row lock until the commit, so workers sharing
one database take turns batch by batch and sequence numbers stay total and gap-free. The writer
keeps the tree's edge and the chain head of its last commit; on PostgreSQL a batch moves the
cursor and writes everything in one statement that only takes effect if the cursor is still
there, and falls back to reading the cursor under its lock when another process appended.

A request may hand over rows that belong with its entry (a disclosure's decision record): they
are inserted in the same transaction, so the row and the entry are durable together or not at
all, and a request costs no commit of its own.

A batch's checkpoints take their roots from the nodes it has in memory; for the requests that
asked for a checkpoint, the writer also keeps the one signed at the batch's end and each entry's
inclusion proof into it, which `receipts.issue` takes instead of reading the tree again.

Checkpoints are signed in the batch that reaches every `checkpoint_every`-th entry, at the end
of a batch when one of its requests asks for it (a disclosure's receipt), and whenever the
oldest entry that no checkpoint covers is `checkpoint_seconds` old. The writer's thread checks
that last rule between batches and while idle, so it holds when traffic stops, and for entries
written by any process, including those from the in-transaction `audit.append`.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, insert, select
from sqlmodel import Session, col

from hub.audit import merkle
from hub.audit.notes import CheckpointSigner
from hub.config import Settings
from hub.errors import AuditUnavailable
from hub.services import audit, audit_checkpoints, audit_tree
from hub.storage.models import AuditCheckpoint, AuditEntry
from keys import KeyRing

__all__ = [
    "AuditWriter",
    "ReceiptMaterial",
    "Row",
    "close_for",
    "for_session",
    "handed_over",
    "writer_for",
]

log = logging.getLogger("hub.audit")

# How many entries one transaction takes at most: enough to absorb any burst the API can
# produce, small enough that one commit stays short.
MAX_BATCH = 512
# How long a request waits for its batch before it answers 503 (the entry may still land; the
# log then records a disclosure attempt that answered nothing, never the other way round).
WAIT_SECONDS = 30.0
# The longest a batch waits for stragglers: small next to a commit's flush to disk, which is
# what every entry that joins the batch saves.
GATHER_SECONDS = 0.002


def _system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReceiptMaterial:
    """What a receipt needs beyond its entry, from the batch that wrote the entry: the
    checkpoint that batch signed and stored at its end, and the entry's inclusion proof into
    it, both from the nodes the batch had in memory."""

    tree_size: int
    note: str
    proof: list[bytes]


@dataclass(frozen=True)
class Row:
    """A row to insert in the same transaction as an entry: the table, and its column values."""

    table: Table
    values: dict[str, Any]


@dataclass(frozen=True)
class _Request:
    pending: audit.Pending
    checkpoint: bool
    future: Future[AuditEntry]
    rows: tuple[Row, ...] = ()


class _Stop:
    """Queued by `close`: everything queued before it is still written."""


class AuditWriter:
    """Batches the appends of this process's threads into one transaction each.

    `signer` is called once per batch (so a rotated key is picked up); without it no
    checkpoint is signed here. Raises ValueError for a cadence below one entry or 0.1 s.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        signer: Callable[[], CheckpointSigner] | None = None,
        checkpoint_every: int = audit_checkpoints.CHECKPOINT_EVERY,
        checkpoint_seconds: float = 60.0,
        clock: Callable[[], datetime] = _system_clock,
        max_batch: int = MAX_BATCH,
        poll_seconds: float | None = None,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
        if checkpoint_seconds < 0.1:
            raise ValueError(f"checkpoint_seconds must be at least 0.1, got {checkpoint_seconds}")
        self._engine = engine
        self._signer = signer
        self._every = checkpoint_every
        self._seconds = timedelta(seconds=checkpoint_seconds)
        self._clock = clock
        self._max_batch = max(1, max_batch)
        # Idle wake-ups check the timed rule: often enough that it is late by a fraction of T.
        self._poll = poll_seconds or min(max(checkpoint_seconds / 4, 0.01), 1.0)
        self._wait = wait_seconds
        self._queue: queue.SimpleQueue[_Request | _Stop] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._connection: Connection | None = None
        # The one connection is used by the writer's thread and by direct calls of
        # `checkpoint_if_due`; never by both at once.
        self._db_lock = threading.Lock()
        self._next_timed_check = 0.0
        self._last_batch = 0
        self._edge: audit_tree.Edge | None = None
        self._chain_head: str | None = None
        # Whether to try the one-statement conditional write. When workers take turns on one
        # database, each batch finds another's entries since this writer's last, and that
        # statement would be refused every time; it is tried again once a batch finds the log
        # as this writer left it.
        self._conditional = True
        # Receipt material of committed entries whose requests asked for a checkpoint, until
        # they take it; bounded, so a request that never asks cannot make it grow.
        self._receipts: dict[int, ReceiptMaterial] = {}

    # --- the requests' side ------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer's thread (once). Raises AuditUnavailable after `close`."""
        with self._lock:
            if self._closed:
                raise AuditUnavailable("the audit writer is stopped")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hub-audit-writer", daemon=True
                )
                self._thread.start()

    def submit(
        self,
        *,
        kind: str,
        body: dict[str, Any],
        now: datetime,
        checkpoint: bool = False,
        rows: Sequence[Row] = (),
    ) -> Future[AuditEntry]:
        """Queue one entry; the future resolves once its batch is committed, or fails with
        AuditUnavailable. With `checkpoint`, the batch also signs a checkpoint covering it;
        `rows` are inserted in the batch's transaction, before the entries.

        Entries queued before `start` wait for it. Raises AuditUnavailable after `close`.
        """
        # Canonical JSON is made here, on the request's thread, to keep the writer's short.
        request = _Request(
            pending=audit.Pending.of(kind=kind, body=body, now=now),
            checkpoint=checkpoint,
            future=Future(),
            rows=tuple(rows),
        )
        with self._lock:
            if self._closed:
                raise AuditUnavailable("the audit writer is stopped")
            self._queue.put(request)
        return request.future

    def append(
        self,
        *,
        kind: str,
        body: dict[str, Any],
        now: datetime,
        checkpoint: bool = False,
        rows: Sequence[Row] = (),
    ) -> AuditEntry:
        """Append one entry (with `rows`, see `submit`) and return it once it is durable.

        Raises AuditUnavailable if its batch failed (nothing of it was written), the writer
        is stopped, or the batch did not commit within the wait limit.
        """
        self.start()
        future = self.submit(kind=kind, body=body, now=now, checkpoint=checkpoint, rows=rows)
        try:
            return future.result(timeout=self._wait)
        except FutureTimeout as exc:
            raise AuditUnavailable("audit entry was not made durable in time") from exc

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread; later appends are refused."""
        with self._lock:
            self._closed = True
            thread = self._thread
            self._queue.put(_Stop())
        if thread is not None:
            thread.join(timeout)
            return
        # Never started: nothing will write what is queued, so its requests fail now.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Request):
                item.future.set_exception(AuditUnavailable("the audit writer is stopped"))

    # --- the writer's thread -------------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take()
            if batch:
                self._commit(batch)
            # Without a signer there is no checkpoint to make, so no reason to look.
            if self._signer is not None and time.monotonic() >= self._next_timed_check:
                self._next_timed_check = time.monotonic() + self._poll
                try:
                    self.checkpoint_if_due()
                except Exception as exc:
                    # The next wake-up tries again; appends are unaffected.
                    with self._db_lock:
                        self._drop_connection()
                    log.warning("timed audit checkpoint failed (%s)", type(exc).__name__)
        with self._db_lock:
            self._drop_connection()

    def _take(self) -> tuple[list[_Request], bool]:
        try:
            first = self._queue.get(timeout=self._poll)
        except queue.Empty:
            return [], False
        if isinstance(first, _Stop):
            return [], True
        batch = [first]
        stop = self._drain(batch)
        # Everything that arrived while the previous batch committed is in. When fewer came
        # than last time, the rest are likely on their way back from that batch: wait once,
        # briefly, or they would always miss this commit and the threads would split into two
        # half-size groups taking turns. One wait only: each wake-up has to win the GIL back
        # from busy request threads.
        if not stop and len(batch) < self._last_batch:
            try:
                item = self._queue.get(timeout=GATHER_SECONDS)
            except queue.Empty:
                pass
            else:
                if isinstance(item, _Stop):
                    stop = True
                else:
                    batch.append(item)
                    stop = self._drain(batch)
        self._last_batch = len(batch)
        return batch, stop

    def _drain(self, batch: list[_Request]) -> bool:
        """Move what is queued into `batch` (up to the limit); True if `close` was queued."""
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if isinstance(item, _Stop):
                return True
            batch.append(item)
        return False

    def _connect(self) -> Connection:
        # One connection for the writer's life: no pool checkout (or ping) per batch.
        if self._connection is None:
            self._connection = self._engine.connect()
        return self._connection

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()  # rolls back anything left open
            except Exception as exc:
                log.warning("audit writer could not close its connection (%s)", type(exc).__name__)

    def _current_signer(self) -> CheckpointSigner | None:
        if self._signer is None:
            return None
        try:
            return self._signer()
        except AuditUnavailable as exc:
            log.warning("audit checkpoints are not signed: %s", exc)
            return None

    def _commit(self, batch: Sequence[_Request]) -> None:
        with self._db_lock:
            self._commit_locked(batch)

    def _commit_locked(self, batch: Sequence[_Request]) -> None:
        signer = self._current_signer()
        try:
            connection = self._connect()
            with connection.begin():
                _insert_rows(connection, batch)
                written = audit.write_entries(
                    connection,
                    [r.pending for r in batch],
                    known=self._edge,
                    chain_head=self._chain_head,
                    conditional=self._conditional,
                )
                entries = written.entries
                receipts: dict[int, ReceiptMaterial] = {}
                if signer is not None:
                    wanted = [e for r, e in zip(batch, entries, strict=True) if r.checkpoint]
                    note = self._sign_due(connection, signer, written, with_end=bool(wanted))
                    if note is not None:
                        receipts = _receipts_for(wanted, written, note)
        except Exception as exc:
            self._drop_connection()
            self._edge, self._chain_head = None, None
            log.error(
                "audit batch of %d entries was rolled back (%s); every request in it fails",
                len(batch),
                type(exc).__name__,
            )
            for request in batch:
                request.future.set_exception(
                    AuditUnavailable("audit entry could not be made durable")
                )
            return
        # Only a committed edge and chain head may be reused: the next batch skips reading the
        # tree (and, on PostgreSQL, the cursor) when the cursor shows no other writer has
        # appended since.
        self._edge, self._chain_head = written.edge, written.chain_head
        self._conditional = not written.others_appended
        if receipts:
            with self._lock:
                self._receipts.update(receipts)
                while len(self._receipts) > _KEPT_RECEIPTS:
                    del self._receipts[next(iter(self._receipts))]
        for request, entry in zip(batch, entries, strict=True):
            request.future.set_result(entry)

    def _sign_due(
        self,
        connection: Connection,
        signer: CheckpointSigner,
        written: audit.Written,
        *,
        with_end: bool,
    ) -> str | None:
        """Store the checkpoints due in this batch; return the note of the one at its end if
        this batch stored it."""
        before, end = written.entries[0].seq - 1, written.entries[-1].seq
        sizes = list(audit_checkpoints.periodic_sizes(after=before, upto=end, every=self._every))
        if with_end and end not in sizes:
            sizes.append(end)
        now = self._clock()
        end_note = None
        for size in sizes:
            # The batch's own nodes give the root; nothing is read back.
            note = audit_checkpoints.store(
                connection, signer=signer, tree_size=size, now=now, root=written.root(size)
            )
            if size == end:
                end_note = note
        return end_note

    def take_receipt(self, seq: int) -> ReceiptMaterial | None:
        """The receipt material of committed entry `seq`, once, if its batch kept any."""
        with self._lock:
            return self._receipts.pop(seq, None)

    # --- the timed rule --------------------------------------------------------------------------

    def _timed_due(self, connection: Connection, now: datetime) -> bool:
        covered = connection.execute(select(func.max(col(AuditCheckpoint.tree_size)))).scalar()
        oldest = connection.execute(
            select(col(AuditEntry.at)).where(col(AuditEntry.seq) == (covered or 0) + 1)
        ).scalar()
        return oldest is not None and now - oldest >= self._seconds

    def checkpoint_if_due(self) -> int | None:
        """Sign the log as it stands if an entry has waited `checkpoint_seconds` without a
        checkpoint covering it; return the size signed, or None if none was due.

        The writer's thread calls this between batches and while idle. Raises what the
        database raises.
        """
        with self._db_lock:
            return self._checkpoint_if_due_locked()

    def _checkpoint_if_due_locked(self) -> int | None:
        now = self._clock()
        connection = self._connect()
        with connection.begin():
            if not self._timed_due(connection, now):
                return None  # the common case reads two rows and writes nothing
        signer = self._current_signer()
        if signer is None:
            return None
        with connection.begin():
            # Take the cursor's lock so the size signed is the log's, then look again: another
            # worker may have signed it meanwhile.
            size, _ = audit.advance_head(connection, 0)
            if not self._timed_due(connection, now):
                return None
            edge = self._edge
            root = audit_tree.root_from(edge.nodes, size) if edge and edge.size == size else None
            audit_checkpoints.store(connection, signer=signer, tree_size=size, now=now, root=root)
        return size


# Receipt material kept for requests that have not taken theirs yet: a few batches' worth.
_KEPT_RECEIPTS = 4 * MAX_BATCH


def _insert_rows(connection: Connection, batch: Sequence[_Request]) -> None:
    """The batch's companion rows, one multi-row INSERT per table."""
    by_table: dict[Table, list[dict[str, Any]]] = {}
    for request in batch:
        for row in request.rows:
            by_table.setdefault(row.table, []).append(row.values)
    for table, values in by_table.items():
        connection.execute(insert(table), values)


def _receipts_for(
    entries: Sequence[AuditEntry], written: audit.Written, note: str
) -> dict[int, ReceiptMaterial]:
    """The inclusion proofs of `entries` into the batch's end checkpoint, from memory."""
    size = written.entries[-1].seq
    material = {}
    for entry in entries:
        ranges = merkle.inclusion_ranges(entry.seq - 1, size)
        if not merkle.needed(ranges) <= written.nodes.keys():
            continue  # not all in memory: the receipt reads the stored tree instead
        proof = [merkle.range_hash(start, end, written.nodes) for start, end in ranges]
        material[entry.seq] = ReceiptMaterial(tree_size=size, note=note, proof=proof)
    return material


def handed_over(session: Session, seq: int) -> ReceiptMaterial | None:
    """The receipt material this process's writer kept for committed entry `seq`, if any."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with _writers_lock:
        writer = _writers.get(engine)
    return writer.take_receipt(seq) if writer is not None else None


# --- one writer per engine in this process ----------------------------------------------------

_writers: dict[Engine, AuditWriter] = {}
_writers_lock = threading.Lock()


def writer_for(
    *,
    engine: Engine,
    settings: Settings,
    keyring: KeyRing,
    clock: Callable[[], datetime] = _system_clock,
) -> AuditWriter:
    """This process's started writer for `engine`, made on first use with the settings'
    checkpoint cadence and the keyring's checkpoint key."""
    with _writers_lock:
        writer = _writers.get(engine)
        if writer is None:
            writer = AuditWriter(
                engine=engine,
                signer=functools.partial(
                    audit_checkpoints.signer_for, keyring=keyring, settings=settings
                ),
                checkpoint_every=settings.audit_checkpoint_every,
                checkpoint_seconds=settings.audit_checkpoint_seconds,
                clock=clock,
            )
            writer.start()
            _writers[engine] = writer
        return writer


def for_session(*, session: Session, settings: Settings, keyring: KeyRing) -> AuditWriter:
    """The writer for the database `session` works on (see `writer_for`)."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return writer_for(engine=engine, settings=settings, keyring=keyring)


def close_for(engine: Engine) -> None:
    """Stop `engine`'s writer, if any, after it has written what is queued."""
    with _writers_lock:
        writer = _writers.pop(engine, None)
    if writer is not None:
        writer.close()
