"""Ask several sources at once, and never let one of them sink the whole answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Literal

from connectors.errors import ConnectorError, ConnectorTimeout
from connectors.models import Connector, RecordSet, SourceQuery

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceResult:
    """What became of asking one source.

    ``error`` is a short machine code and never personal data: ``"timeout"`` (the connector's own
    timeout), ``"deadline"`` (still running at the overall deadline), ``"unavailable"``,
    ``"bad_response"``, ``"bad_query"``, ``"misconfigured"``, or ``"error"`` for anything else.
    """

    status: Literal["ok", "failed", "timed_out"]
    records: RecordSet
    error: str | None = None


def fetch_all(
    requests: Mapping[str, tuple[Connector, SourceQuery]], *, timeout: float
) -> dict[str, SourceResult]:
    """Ask every source concurrently and collect what each answered by ``timeout`` seconds.

    The result has one entry per key of ``requests`` (the caller's source names). A source that
    raises is ``failed``, one that is still busy at the deadline is ``timed_out``; neither affects
    the others. The call returns at the deadline even if a source is stuck: its thread is left to
    finish on its own, bounded by the connector's own timeouts. Records of categories the query
    did not ask for are dropped, whatever the connector returned.

    Raises:
        ValueError: if ``timeout`` is not positive.
    """
    if not timeout > 0:
        raise ValueError("timeout must be a positive number of seconds")
    if not requests:
        return {}
    deadline = time.monotonic() + timeout
    executor = ThreadPoolExecutor(max_workers=len(requests), thread_name_prefix="connector-fetch")
    try:
        futures = {
            name: executor.submit(connector.fetch, query)
            for name, (connector, query) in requests.items()
        }
        wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
    finally:
        # Never wait for a stuck source: the deadline is a promise to the requester.
        executor.shutdown(wait=False, cancel_futures=True)
    return {name: _result(name, future, requests[name][1]) for name, future in futures.items()}


def _result(name: str, future: Future[RecordSet], query: SourceQuery) -> SourceResult:
    if not future.done():
        future.cancel()
        return SourceResult("timed_out", RecordSet(), "deadline")
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
