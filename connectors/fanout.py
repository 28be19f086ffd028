"""Ask several sources at once, and never let one of them sink the whole answer."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Literal

from connectors.errors import ConnectorError, ConnectorTimeout
from connectors.models import Connector, RecordSet, SourceQuery

logger = logging.getLogger(__name__)

DEFAULT_MAX_IN_FLIGHT = 8
DEFAULT_MAX_THREADS = 32

_pool_numbers = itertools.count(1)


@dataclass(frozen=True)
class SourceResult:
    """What became of asking one source.

    ``error`` is a short machine code and never personal data: ``"timeout"`` (the connector's own
    timeout), ``"deadline"`` (still running at the overall deadline), ``"busy"`` (not asked: the
    source had its limit of fetches outstanding until the deadline), ``"queued"`` (not asked:
    no fan-out thread came free before the deadline), ``"unavailable"``, ``"bad_response"``,
    ``"bad_query"``, ``"misconfigured"``, or ``"error"`` for anything else.
    """

    status: Literal["ok", "failed", "timed_out"]
    records: RecordSet
    error: str | None = None


class FetchPool:
    """The fan-out of one process, shared by all its requests: one bounded thread pool, and a
    cap on the fetches outstanding at each source.

    A request returns at its deadline, but a fetch to a stalled source goes on until the
    connector's own timeout ends it. Without these bounds every request in the meantime would
    add one more thread and one more open request at that source. A fetch counts against its
    source from the moment it is submitted until it ends (or is cancelled before it started).
    """

    def __init__(
        self,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_threads: int = DEFAULT_MAX_THREADS,
    ) -> None:
        if max_in_flight < 1 or max_threads < 1:
            raise ValueError("max_in_flight and max_threads must be at least 1")
        self.max_in_flight = max_in_flight
        self.max_threads = max_threads
        # Unique per pool, so its threads can be told apart from those of any other pool.
        self.thread_name_prefix = f"connector-fetch-{next(_pool_numbers)}"
        self._executor = ThreadPoolExecutor(
            max_workers=max_threads, thread_name_prefix=self.thread_name_prefix
        )
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._in_flight: dict[str, int] = {}

    def in_flight(self, source: str) -> int:
        """Fetches submitted to ``source`` that have not ended yet."""
        with self._lock:
            return self._in_flight.get(source, 0)

    def threads(self) -> list[threading.Thread]:
        """The live threads of this pool (never more than ``max_threads``)."""
        prefix = self.thread_name_prefix + "_"
        return [t for t in threading.enumerate() if t.name.startswith(prefix)]

    def wait_for_room(self, sources: Collection[str], timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until one of ``sources`` is below its limit."""
        with self._slot_freed:
            return self._slot_freed.wait_for(
                lambda: any(self._in_flight.get(s, 0) < self.max_in_flight for s in sources),
                timeout=timeout,
            )

    def submit(
        self, source: str, connector: Connector, query: SourceQuery
    ) -> Future[RecordSet] | None:
        """Start ``connector.fetch(query)``; None at once if ``source`` is at its limit."""
        with self._lock:
            outstanding = self._in_flight.get(source, 0)
            if outstanding >= self.max_in_flight:
                return None
            self._in_flight[source] = outstanding + 1
        try:
            future = self._executor.submit(connector.fetch, query)
        except BaseException:
            self._release(source)
            raise
        # Runs when the fetch ends, fails or is cancelled while still queued.
        future.add_done_callback(lambda _: self._release(source))
        return future

    def _release(self, source: str) -> None:
        with self._lock:
            left = self._in_flight.get(source, 0) - 1
            if left > 0:
                self._in_flight[source] = left
            else:
                self._in_flight.pop(source, None)
            self._slot_freed.notify_all()

    def close(self) -> None:
        """Drop queued fetches and let running ones end on their own; never waits."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def fetch_all(
    requests: Mapping[str, tuple[Connector, SourceQuery]],
    *,
    timeout: float,
    pool: FetchPool | None = None,
) -> dict[str, SourceResult]:
    """Ask every source concurrently and collect what each answered by ``timeout`` seconds.

    The result has one entry per key of ``requests`` (the caller's source names, which are also
    the keys of ``pool``'s per-source limits). A source that raises is ``failed``, one that is
    still busy at the deadline is ``timed_out``; neither affects the others. The call returns at
    the deadline even if a source is stuck: its thread is left to finish on its own, bounded by
    the connector's own timeouts. With a shared ``pool``, a source that has the pool's limit of
    fetches outstanding is asked only if one of them ends before the deadline (else it is
    ``timed_out`` with ``"busy"``: a stalled source holds no more threads or connections, however
    many requests ask it), and a fetch still waiting for a thread at the deadline is dropped
    (``timed_out``, ``"queued"``). Without a pool, this call gets one of its own with a thread for
    every source. Records of categories the query did not ask for are dropped, whatever the
    connector returned.

    Raises:
        ValueError: if ``timeout`` is not positive.
    """
    if not timeout > 0:
        raise ValueError("timeout must be a positive number of seconds")
    if not requests:
        return {}
    deadline = time.monotonic() + timeout
    own_pool = pool is None
    fetching = pool or FetchPool(max_in_flight=1, max_threads=len(requests))
    try:
        futures = {
            name: fetching.submit(name, connector, query)
            for name, (connector, query) in requests.items()
        }
        _submit_as_room_frees(fetching, requests, futures, deadline)
        started = [f for f in futures.values() if f is not None]
        wait(started, timeout=max(0.0, deadline - time.monotonic()))
    finally:
        if own_pool:
            # Never wait for a stuck source: the deadline is a promise to the requester.
            fetching.close()
    return {name: _result(name, future, requests[name][1]) for name, future in futures.items()}


def _submit_as_room_frees(
    pool: FetchPool,
    requests: Mapping[str, tuple[Connector, SourceQuery]],
    futures: dict[str, Future[RecordSet] | None],
    deadline: float,
) -> None:
    """Ask each source that was at its limit as soon as it has room, until the deadline; the
    sources already asked go on meanwhile."""
    waiting = [name for name, future in futures.items() if future is None]
    while waiting:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not pool.wait_for_room(waiting, remaining):
            return
        for name in list(waiting):
            connector, query = requests[name]
            future = pool.submit(name, connector, query)
            if future is not None:  # another request may have taken the slot first
                futures[name] = future
                waiting.remove(name)


def _result(name: str, future: Future[RecordSet] | None, query: SourceQuery) -> SourceResult:
    if future is None:
        logger.warning("source %s not asked: at its limit of fetches in flight", name)
        return SourceResult("timed_out", RecordSet(), "busy")
    if not future.done():
        if future.cancel():
            logger.warning("source %s not asked: no fan-out thread free by the deadline", name)
            return SourceResult("timed_out", RecordSet(), "queued")
        return SourceResult("timed_out", RecordSet(), "deadline")
    if future.cancelled():  # dropped while queued, by a pool closing under this call
        return SourceResult("timed_out", RecordSet(), "queued")
    exc = future.exception()
    if exc is None:
        answer = future.result()
        if not isinstance(answer, RecordSet):
            logger.error("source %s returned %s, not a RecordSet", name, type(answer).__name__)
            return SourceResult("failed", RecordSet(), "bad_response")
        asked = set(query.categories)
        records = tuple(r for r in answer.records if r.category in asked)
        return SourceResult("ok", RecordSet(records))
    # Only the exception type is logged: messages of foreign exceptions may hold personal data.
    if isinstance(exc, ConnectorTimeout):
        logger.warning("source %s timed out", name)
        return SourceResult("timed_out", RecordSet(), exc.code)
    if isinstance(exc, ConnectorError):
        logger.warning("source %s failed: %s", name, exc.code)
        return SourceResult("failed", RecordSet(), exc.code)
    logger.error("source %s raised %s", name, type(exc).__name__)
    return SourceResult("failed", RecordSet(), "error")
