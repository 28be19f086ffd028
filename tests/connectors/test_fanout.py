from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from connectors import (
    CategoryRule,
    ConnectorTimeout,
    ConnectorUnavailable,
    FakeConnector,
    FetchPool,
    Record,
    RecordSet,
    RestConnector,
    SourceQuery,
    SourceResult,
    Timeout,
    fetch_all,
)
from tests.security.servers import InFlight, serving, wait_until

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


# ---------------------------------------------------------------------------------------------
# A pool shared by every request: fetches in flight per source, threads for all sources


def test_a_stalled_source_never_has_more_fetches_in_flight_than_its_limit(
    release: threading.Event,
) -> None:
    pool = FetchPool(max_in_flight=2, max_threads=8)
    at_source = InFlight()
    social = SourceQuery("CS-1", ("social_care",))
    identity = SourceQuery("ID-1", ("identity",))
    with serving(lambda: (200, "application/json", b"[]"), delay=release, counter=at_source) as url:
        rule = CategoryRule("/people/{local_id}", fields=("status",))
        # Its read timeout outlasts the test: only the stall's end frees the source's slots.
        stalled = RestConnector(url, {"social_care": rule}, timeout=Timeout(connect=1, read=30))

        def one_request(_: int) -> dict[str, SourceResult]:
            return fetch_all(
                {"social": (stalled, social), "police": (answering(IDENTITY), identity)},
                timeout=0.5,
                pool=pool,
            )

        with ThreadPoolExecutor(max_workers=6) as requesters:
            answers = list(requesters.map(one_request, range(6)))
        wait_until(lambda: at_source.now == 2, "the two admitted fetches to reach the source")

        assert at_source.peak == 2 and at_source.received == 2
        assert sorted(str(a["social"].error) for a in answers) == ["busy"] * 4 + ["deadline"] * 2
        assert {a["social"].status for a in answers} == {"timed_out"}
        assert all(a["police"] == SourceResult("ok", RecordSet((IDENTITY,))) for a in answers)
        wait_until(lambda: pool.in_flight("police") == 0, "the answered fetches to be let go")
        assert pool.in_flight("social") == 2
        assert len(pool.threads()) <= pool.max_threads

        release.set()
        wait_until(lambda: pool.in_flight("social") == 0, "the stalled fetches to end")
        after = fetch_all({"social": (stalled, social)}, timeout=5, pool=pool)

        assert after["social"].status == "ok"
        assert len(pool.threads()) <= pool.max_threads
        stalled.close()
    pool.close()


def test_fan_out_threads_never_exceed_the_pool_and_queued_fetches_are_dropped(
    release: threading.Event,
) -> None:
    pool = FetchPool(max_in_flight=8, max_threads=2)
    started: list[str] = []

    def stuck_counting(name: str) -> FakeConnector:
        def handler(query: SourceQuery) -> RecordSet:
            started.append(name)
            release.wait(10)
            return RecordSet((IDENTITY,))

        return FakeConnector(handler, categories=["identity"])

    query = SourceQuery("ID-1", ("identity",))
    sources = {name: (stuck_counting(name), query) for name in ("a", "b", "c", "d")}

    results = fetch_all(sources, timeout=0.3, pool=pool)

    assert sorted(str(r.error) for r in results.values()) == ["deadline"] * 2 + ["queued"] * 2
    assert {r.status for r in results.values()} == {"timed_out"}
    wait_until(lambda: len(started) == 2, "the two running fetches to reach their sources")
    assert len(pool.threads()) == 2
    # The queued fetches were dropped at the deadline and hold no slot of their source.
    queued = [name for name, r in results.items() if r.error == "queued"]
    assert [pool.in_flight(name) for name in queued] == [0, 0]

    release.set()
    wait_until(lambda: all(pool.in_flight(n) == 0 for n in sources), "the stuck fetches to end")
    again = fetch_all(sources, timeout=5, pool=pool)

    assert {r.status for r in again.values()} == {"ok"}
    assert len(pool.threads()) <= 2
    assert len(started) == 6 and set(started) == set(sources)
    pool.close()


def test_a_fetch_pool_needs_positive_limits() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FetchPool(max_in_flight=0)
    with pytest.raises(ValueError, match="at least 1"):
        FetchPool(max_threads=0)
