"""A connector for tests: a plain function stands in for the record system."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from connectors.models import Connector, RecordSet, SourceQuery, wanted_categories


class FakeConnector(Connector):
    """Answers with whatever ``handler`` returns, as a real connector would.

    Like the real ones it only asks about categories it can supply: the handler gets the query
    narrowed to those, is not called when none are left, and records of other categories in its
    answer are dropped. The handler may raise connector errors to simulate failures. ``queries``
    keeps every query the handler was given and ``closed`` tells whether :meth:`close` ran.
    """

    def __init__(
        self, handler: Callable[[SourceQuery], RecordSet], *, categories: Iterable[str]
    ) -> None:
        self._handler = handler
        self.categories: frozenset[str] = frozenset(categories)
        self.queries: list[SourceQuery] = []
        self.closed = False
        self._lock = threading.Lock()

    def fetch(self, query: SourceQuery) -> RecordSet:
        """Call the handler with the query narrowed to this connector's categories.

        Raises:
            Exception: whatever the handler raises.
        """
        wanted = wanted_categories(query, self.categories)
        if not wanted:
            return RecordSet()
        narrowed = SourceQuery(local_id=query.local_id, categories=wanted)
        with self._lock:
            self.queries.append(narrowed)
        answer = self._handler(narrowed)
        return RecordSet(tuple(r for r in answer.records if r.category in wanted))

    def close(self) -> None:
        """Mark the connector closed."""
        self.closed = True
