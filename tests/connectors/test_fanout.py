from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from connectors import (
    ConnectorTimeout,
    ConnectorUnavailable,
    FakeConnector,
    Record,
    RecordSet,
    SourceQuery,
    SourceResult,
    fetch_all,
)

IDENTITY = Record("identity", {"given_name": "Alex"})


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown, so a deliberately stuck source thread ends with its test."""
    event = threading.Event()
    yield event
    event.set()


def answering(*records: Record) -> FakeConnector:
    return FakeConnector(lambda query: RecordSet(records), categories=["identity", "contact"])


def raising(exc: Exception) -> FakeConnector:
    def handler(query: SourceQuery) -> RecordSet:
        raise exc

    return FakeConnector(handler, categories=["identity"])


def stuck(release: threading.Event) -> FakeConnector:
    def handler(query: SourceQuery) -> RecordSet:
        release.wait(10)
        return RecordSet((IDENTITY,))

    return FakeConnector(handler, categories=["identity"])


def test_fetch_all_isolates_failing_and_slow_sources(release: threading.Event) -> None:
    query = SourceQuery("ID-1", ("identity",))
    started = time.monotonic()

    results = fetch_all(
        {
            "northtown-police": (answering(IDENTITY), query),
            "northtown-academy": (raising(ConnectorUnavailable("refused")), query),
            "brightpath-youth": (raising(RuntimeError("bug with NTP-1042 in it")), query),
            "northtown-childrens-services": (stuck(release), query),
        },
        timeout=0.3,
    )

    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.6
    assert results == {
        "northtown-police": SourceResult("ok", RecordSet((IDENTITY,))),
        "northtown-academy": SourceResult("failed", RecordSet(), "unavailable"),
        "brightpath-youth": SourceResult("failed", RecordSet(), "error"),
        "northtown-childrens-services": SourceResult("timed_out", RecordSet(), "deadline"),
    }


def test_fetch_all_returns_as_soon_as_every_source_answered() -> None:
    query = SourceQuery("ID-1", ("identity",))
    started = time.monotonic()

    results = fetch_all({"a": (answering(IDENTITY), query)}, timeout=5)

    assert time.monotonic() - started < 1
    assert results["a"].status == "ok"


def test_connector_timeout_is_timed_out() -> None:
    query = SourceQuery("ID-1", ("identity",))

    results = fetch_all({"a": (raising(ConnectorTimeout("slow")), query)}, timeout=1)

    assert results["a"] == SourceResult("timed_out", RecordSet(), "timeout")


def test_records_of_categories_not_asked_for_are_dropped() -> None:
    class Leaky:
        categories = frozenset({"identity", "contact"})

        def fetch(self, query: SourceQuery) -> RecordSet:
            return RecordSet((IDENTITY, Record("contact", {"phone": "01632 960 000"})))

        def close(self) -> None:
            pass

        def __enter__(self) -> Leaky:
            return self

        def __exit__(self, *exc_info: object) -> None:
            self.close()

    results = fetch_all({"a": (Leaky(), SourceQuery("ID-1", ("identity",)))}, timeout=1)

    assert results["a"].records == RecordSet((IDENTITY,))


def test_fetch_all_of_nothing_is_empty() -> None:
    assert fetch_all({}, timeout=1) == {}


def test_fetch_all_needs_a_positive_timeout() -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        fetch_all({}, timeout=0)


def test_fake_connector_narrows_the_query_and_its_answer() -> None:
    answers = RecordSet((IDENTITY, Record("contact", {"phone": "x"}), Record("health", {})))
    fake = FakeConnector(lambda query: answers, categories=["identity", "health"])

    with fake:
        result = fake.fetch(SourceQuery("ID-1", ("identity", "contact")))
        nothing = fake.fetch(SourceQuery("ID-1", ("contact",)))

    assert result.records == (IDENTITY,)
    assert nothing.records == ()
    assert fake.queries == [SourceQuery("ID-1", ("identity",))]
    assert fake.closed


def test_source_query_refuses_an_empty_local_id() -> None:
    with pytest.raises(ValueError, match="local id must be a non-empty string"):
        SourceQuery("", ("identity",))
