from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from connectors import (
    CategoryRule,
    ConnectorTimeout,
    ConnectorUnavailable,
    Record,
    SourceQuery,
    SqlConnector,
    Timeout,
    fetch_all,
)

from .conftest import PgSchema, closed_port

CONTACTS = CategoryRule(
    "SELECT person_id, occurred_on, kind, officer_name, internal_note "
    "FROM contacts WHERE person_id = :local_id ORDER BY occurred_on",
    fields=("occurred_on", "kind"),
    third_party=("officer_name",),
)
PEOPLE = CategoryRule(
    "SELECT person_id, given_name FROM people WHERE person_id = :local_id",
    fields=("given_name",),
)
INJECTIONS = [
    "NTP-1' OR '1'='1",
    "NTP-1'; DROP TABLE contacts; --",
    'NTP-1" OR 1=1 --',
    "' UNION SELECT person_id, given_name, given_name, given_name, given_name FROM people --",
]


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    path = tmp_path / "police.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE people (person_id TEXT, given_name TEXT);
            CREATE TABLE contacts (person_id TEXT, occurred_on TEXT, kind TEXT,
                                   officer_name TEXT, internal_note TEXT);
            INSERT INTO people VALUES ('NTP-1', 'Alex'), ('NTP-2', 'Sam');
            INSERT INTO contacts VALUES
                ('NTP-1', '2025-09-12', 'missing_person', 'PC Officer', 'secret note'),
                ('NTP-1', '2025-10-03', 'asb', NULL, 'another note'),
                ('NTP-2', '2025-08-21', 'victim', 'DC Other', 'not about NTP-1');
            """
        )
    db.close()
    return path


def sqlite_connector(path: Path, **kwargs: Timeout) -> SqlConnector:
    return SqlConnector(
        f"sqlite:///{path}", {"police_contact": CONTACTS, "identity": PEOPLE}, **kwargs
    )


def test_sqlite_fetch_returns_only_mapped_fields_of_asked_categories(sqlite_db: Path) -> None:
    with sqlite_connector(sqlite_db) as connector:
        result = connector.fetch(SourceQuery("NTP-1", ("police_contact", "health")))

    assert connector.categories == {"police_contact", "identity"}
    assert result.records == (
        Record(
            "police_contact",
            {"occurred_on": "2025-09-12", "kind": "missing_person", "officer_name": "[redacted]"},
        ),
        Record(
            "police_contact", {"occurred_on": "2025-10-03", "kind": "asb", "officer_name": None}
        ),
    )


def test_sqlite_fetch_of_unknown_person_or_unmapped_category_is_empty(sqlite_db: Path) -> None:
    with sqlite_connector(sqlite_db) as connector:
        assert connector.fetch(SourceQuery("NTP-404", ("police_contact", "identity"))).records == ()
        assert connector.fetch(SourceQuery("NTP-1", ("health",))).records == ()


@pytest.mark.parametrize("local_id", INJECTIONS)
def test_sqlite_injection_shaped_local_id_returns_nothing_and_harms_nothing(
    sqlite_db: Path, local_id: str
) -> None:
    with sqlite_connector(sqlite_db) as connector:
        assert connector.fetch(SourceQuery(local_id, ("police_contact", "identity"))).records == ()
        assert len(connector.fetch(SourceQuery("NTP-1", ("police_contact",))).records) == 2
    with sqlite3.connect(sqlite_db) as db:
        assert db.execute("SELECT count(*) FROM contacts").fetchone() == (3,)
    db.close()


def test_sqlite_database_is_opened_read_only_and_never_created(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"

    with (
        sqlite_connector(missing) as connector,
        pytest.raises(ConnectorUnavailable, match=r"database query failed \(OperationalError\)"),
    ):
        connector.fetch(SourceQuery("NTP-1", ("identity",)))

    assert not missing.exists()


def test_sqlite_missing_table_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()

    with sqlite_connector(path) as connector, pytest.raises(ConnectorUnavailable) as caught:
        connector.fetch(SourceQuery("NTP-1", ("identity",)))

    assert caught.value.code == "unavailable"
    # The local id is a bound parameter that SQLAlchemy must not echo in the chained error.
    assert "NTP-1" not in str(caught.value)
    assert "NTP-1" not in str(caught.value.__cause__)


def test_connector_can_fetch_again_after_close(sqlite_db: Path) -> None:
    connector = sqlite_connector(sqlite_db)
    connector.close()
    connector.fetch(SourceQuery("NTP-1", ("identity",)))
    connector.close()

    assert connector.fetch(SourceQuery("NTP-2", ("identity",))).records == (
        Record("identity", {"given_name": "Sam"}),
    )
    connector.close()


PG_SETUP = """
CREATE TABLE people (person_id TEXT PRIMARY KEY, given_name TEXT, date_of_birth DATE);
CREATE TABLE contacts (
    person_id TEXT, occurred_at TIMESTAMP WITH TIME ZONE, score NUMERIC(5, 2), visits INTEGER,
    ref UUID, officer_name TEXT, internal_note TEXT
);
CREATE SEQUENCE counter;
INSERT INTO people VALUES ('NTP-1', 'Alex', '2011-03-14'), ('NTP-2', 'Sam', '1999-07-02');
INSERT INTO contacts VALUES
    ('NTP-1', '2025-09-12 23:10:00+00', 12.50, 3, 'a8098c1a-f86e-11da-bd1a-00112444be1e',
     'PC Officer', 'secret note'),
    ('NTP-2', '2025-08-21 10:00:00+00', 7.00, 1, NULL, 'DC Other', 'other note');
"""


@pytest.fixture
def pg(pg_schema: PgSchema) -> PgSchema:
    with pg_schema.engine.begin() as connection:
        connection.execute(text(f'SET LOCAL search_path TO "{pg_schema.name}"'))
        for statement in PG_SETUP.split(";"):
            if statement.strip():
                connection.execute(text(statement))
    return pg_schema


PG_CONTACTS = CategoryRule(
    "SELECT person_id, occurred_at, score, visits, ref, officer_name, internal_note "
    "FROM contacts WHERE person_id = :local_id",
    fields=("occurred_at", "score", "visits", "ref"),
    third_party=("officer_name",),
)
PG_PEOPLE = CategoryRule(
    "SELECT person_id, given_name, date_of_birth FROM people WHERE person_id = :local_id",
    fields=("given_name", "date_of_birth"),
)


def test_postgresql_fetch_converts_values_to_json(pg: PgSchema) -> None:
    rules = {"police_contact": PG_CONTACTS, "identity": PG_PEOPLE}
    with SqlConnector(pg.url, rules) as connector:
        result = connector.fetch(SourceQuery("NTP-1", ("identity", "police_contact")))

    assert result.records == (
        Record("identity", {"given_name": "Alex", "date_of_birth": "2011-03-14"}),
        Record(
            "police_contact",
            {
                "occurred_at": "2025-09-12T23:10:00+00:00",
                "score": 12.5,
                "visits": 3,
                "ref": "a8098c1a-f86e-11da-bd1a-00112444be1e",
                "officer_name": "[redacted]",
            },
        ),
    )


@pytest.mark.parametrize("local_id", INJECTIONS)
def test_postgresql_injection_shaped_local_id_returns_nothing_and_harms_nothing(
    pg: PgSchema, local_id: str
) -> None:
    rules = {"police_contact": PG_CONTACTS, "identity": PG_PEOPLE}
    with SqlConnector(pg.url, rules) as connector:
        assert connector.fetch(SourceQuery(local_id, ("police_contact", "identity"))).records == ()
        assert len(connector.fetch(SourceQuery("NTP-1", ("police_contact",))).records) == 1
    with pg.engine.connect() as connection:
        connection.execute(text("SELECT set_config('search_path', :s, false)"), {"s": pg.name})
        count = connection.execute(text("SELECT count(*) FROM contacts")).scalar()
    assert count == 2


def test_postgresql_session_is_read_only(pg: PgSchema) -> None:
    writer = CategoryRule(
        "SELECT nextval('counter') AS n, person_id FROM people WHERE person_id = :local_id",
        fields=("n",),
    )
    with (
        SqlConnector(pg.url, {"identity": writer}) as connector,
        pytest.raises(
            ConnectorUnavailable, match=r"database query failed \(ReadOnlySqlTransaction\)"
        ),
    ):
        connector.fetch(SourceQuery("NTP-1", ("identity",)))


def test_postgresql_statement_timeout_is_the_read_timeout(pg: PgSchema) -> None:
    slow = CategoryRule(
        "SELECT person_id, given_name FROM people, pg_sleep(2) WHERE person_id = :local_id",
        fields=("given_name",),
    )
    timeout = Timeout(connect=2.0, read=0.2)
    with (
        SqlConnector(pg.url, {"identity": slow}, timeout=timeout) as connector,
        pytest.raises(ConnectorTimeout, match="database statement timed out"),
    ):
        connector.fetch(SourceQuery("NTP-1", ("identity",)))


def test_postgresql_unreachable_is_unavailable() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test"
    with (
        SqlConnector(url, {"identity": PG_PEOPLE}) as connector,
        pytest.raises(ConnectorUnavailable, match=r"database query failed \(OperationalError\)"),
    ):
        connector.fetch(SourceQuery("NTP-1", ("identity",)))


def test_one_connector_serves_concurrent_fetches(sqlite_db: Path) -> None:
    connector = sqlite_connector(sqlite_db)
    requests = {
        f"source-{n}": (connector, SourceQuery(f"NTP-{1 + n % 2}", ("identity",))) for n in range(8)
    }

    with connector:
        results = fetch_all(requests, timeout=5)

    assert {r.status for r in results.values()} == {"ok"}
    assert results["source-1"].records.records == (Record("identity", {"given_name": "Sam"}),)
