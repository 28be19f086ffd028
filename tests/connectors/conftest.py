"""Fixtures for the connector tests: real SQLite files, the real PostgreSQL, real loopback HTTP."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from hub.demo.sources import SourceServer, rest_source_app, write_demo_sources

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released), so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass(frozen=True)
class PgSchema:
    """A fresh PostgreSQL schema: ``engine`` to set it up, ``url`` for a connector to use it."""

    name: str
    url: str
    engine: Engine


@pytest.fixture
def pg_schema() -> Iterator[PgSchema]:
    # No skip when PostgreSQL is down: the connection error fails the test, as it should.
    base = make_url(os.environ.get("HUB_TEST_DATABASE_URL", DEFAULT_PG_URL))
    assert base.get_backend_name() == "postgresql", "HUB_TEST_DATABASE_URL must be PostgreSQL"
    name = f"conn_{uuid.uuid4().hex[:16]}"
    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    url = base.update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield PgSchema(name, url.render_as_string(hide_password=False), engine)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        engine.dispose()


@dataclass(frozen=True)
class DemoSources:
    directory: Path
    url: str
    configs: dict[str, Path]


@pytest.fixture
def demo_sources(tmp_path: Path) -> Iterator[DemoSources]:
    """The demo's source systems, written to a temp directory and served on loopback."""
    directory = tmp_path / "sources"
    with SourceServer(rest_source_app(directory)) as server:
        configs = write_demo_sources(directory, rest_base_url=server.url)
        yield DemoSources(directory, server.url, configs)
