"""The values that pass between the hub and a connector."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 5.0


@dataclass(frozen=True)
class Timeout:
    """Seconds allowed to connect to a source and to wait for each read from it.

    Raises:
        ValueError: if either value is not a positive number.
    """

    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT

    def __post_init__(self) -> None:
        for name in ("connect", "read"):
            value = getattr(self, name)
            # bool is an int subclass, and "connect_timeout = true" is a typo, not one second.
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"timeout {name} must be a positive number of seconds")


@dataclass(frozen=True)
class SourceQuery:
    """Ask one source for the records it holds about one person, in some categories.

    ``local_id`` is the source's own id of the person, never a hub pseudonym.

    Raises:
        ValueError: if ``local_id`` is empty or a category is not a non-empty string.
    """

    local_id: str
    categories: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.local_id, str) or not self.local_id:
            raise ValueError("local id must be a non-empty string")
        if not isinstance(self.categories, tuple) or not all(
            isinstance(c, str) and c for c in self.categories
        ):
            raise ValueError("categories must be a tuple of non-empty strings")


def wanted_categories(query: SourceQuery, supplied: Collection[str]) -> tuple[str, ...]:
    """The categories of ``query`` that are in ``supplied``, each once, in the query's order."""
    return tuple(c for c in dict.fromkeys(query.categories) if c in supplied)


@dataclass(frozen=True)
class Record:
    """One record of one category; ``fields`` holds JSON-able values only (dates as ISO text)."""

    category: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class RecordSet:
    """What one source answered to one query."""

    records: tuple[Record, ...] = ()

    def categories(self) -> frozenset[str]:
        """The categories that have at least one record."""
        return frozenset(r.category for r in self.records)


class Connector(Protocol):
    """An adapter to one agency's record system.

    ``with connector:`` closes it on exit. Implementations are safe to call from several threads
    at once, because the hub asks sources concurrently. The connectors of this package subclass
    it to inherit ``__enter__`` and ``__exit__``; any class with these members is a connector.
    """

    categories: frozenset[str]
    """The categories this connector's mapping can supply."""

    def fetch(self, query: SourceQuery) -> RecordSet:
        """Fetch the records in ``query.categories`` that this connector can supply.

        Categories the connector does not map are ignored, not an error.

        Raises:
            ConnectorTimeout: the source was too slow.
            ConnectorUnavailable: the source could not be reached or refused.
            ConnectorError: anything else, e.g. an answer of the wrong shape ("bad_response").
        """
        ...

    def close(self) -> None:
        """Release connections; a later fetch connects again."""
        ...

    def __enter__(self) -> Self:
        """Return the connector itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connector."""
        self.close()
