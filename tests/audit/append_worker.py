"""A worker process for the group-commit tests: its own engine, its own audit writer, several
threads appending at once, as one `hub serve` worker among several would."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier

from hub.services.audit_writer import AuditWriter
from hub.storage.db import make_engine

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def append_from_threads(
    database_url: str, *, worker: str, threads: int, per_thread: int, start: Barrier | None = None
) -> None:
    """Append `threads * per_thread` entries whose bodies name (worker, thread, i).

    `start` is a barrier shared with the other worker processes, so they really overlap.
    Exits with status 1 if any append failed.
    """
    engine = make_engine(database_url)
    writer = AuditWriter(engine=engine)
    writer.start()
    ready = threading.Barrier(threads)
    failures: list[BaseException] = []

    def run(thread: int) -> None:
        ready.wait()
        try:
            for i in range(per_thread):
                writer.append(
                    kind="bench",
                    body={"worker": worker, "thread": thread, "i": i},
                    now=T0 + timedelta(microseconds=i),
                )
        except BaseException as exc:
            failures.append(exc)

    if start is not None:
        start.wait()
    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    writer.close()
    engine.dispose()
    if failures:
        raise SystemExit(1)
