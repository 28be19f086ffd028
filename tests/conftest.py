"""Shared fixtures.

Every test that asks for `database_url` runs once per backend named by `--databases`
(`sqlite`, `postgresql` or both); each run gets its own SQLite file or its own PostgreSQL schema,
dropped afterwards, so no state is shared between tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--databases",
        default="sqlite",
        help="comma-separated backends for database tests: sqlite, postgresql",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        backends = [b.strip() for b in metafunc.config.getoption("--databases").split(",")]
        unknown = set(backends) - {"sqlite", "postgresql"}
        if unknown:
            raise pytest.UsageError(f"unknown database backend(s): {sorted(unknown)}")
        metafunc.parametrize("database_url", backends, indirect=True)


def postgres_base_url() -> str:
    return os.environ.get("HUB_TEST_DATABASE_URL", DEFAULT_PG_URL)


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'hub.db'}"
        return
    base = postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(autouse=True, scope="session")
def cheapest_password_hashing() -> Iterator[None]:
    """Hash people's passwords with argon2id at its cheapest parameters inside this process.

    The hub's own parameters (argon2-cffi's RFC 9106 low-memory profile) cost a quarter of a
    second per hash on these machines, and most API tests sign people in several times. The
    algorithm, the stored format and every check stay the same; hubs started as separate
    processes (the end-to-end, browser and crash tests) keep the real parameters.
    """
    from argon2 import PasswordHasher, profiles

    from hub.services import auth

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_password_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
        yield
