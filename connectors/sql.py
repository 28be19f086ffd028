"""A connector that reads an agency's records from a SQL database through SQLAlchemy."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from connectors._json import jsonable
from connectors._lazy import Lazy
from connectors.config import CategoryRule, ConnectorConfig
from connectors.errors import ConnectorConfigError, ConnectorTimeout, ConnectorUnavailable
from connectors.models import Connector, Record, RecordSet, SourceQuery, Timeout, wanted_categories

# PostgreSQL's SQLSTATE for a statement cancelled by statement_timeout.
_QUERY_CANCELED = "57014"


class SqlConnector(Connector):
    """Runs each category's parameterised SELECT with the person's local id bound.

    The engine is created on the first fetch, not here, so that building a connector never
    touches the network. The connection is read-only where the database allows it: SQLite files
    are opened with ``mode=ro``, PostgreSQL sessions get ``default_transaction_read_only`` and a
    ``statement_timeout`` equal to the read timeout. Give the connector a read-only database
    account all the same.

    Raises:
        ConnectorConfigError: if the URL or a category rule is invalid.
    """

    def __init__(
        self,
        url: str,
        categories: Mapping[str, CategoryRule],
        *,
        timeout: Timeout = Timeout(),
    ) -> None:
        # Validating through ConnectorConfig keeps one set of rules for files and for code.
        config = ConnectorConfig(
            kind="sql", settings={"url": url}, categories=dict(categories), timeout=timeout
        )
        self._rules = dict(config.categories)
        self.categories: frozenset[str] = frozenset(self._rules)
        self._engine = Lazy(partial(_new_engine, url, timeout), Engine.dispose)

    @classmethod
    def from_config(cls, config: ConnectorConfig) -> SqlConnector:
        """Build the connector a ``kind = "sql"`` config describes.

        Raises:
            ConnectorConfigError: if the config is not a SQL one.
        """
        if config.kind != "sql":
            raise ConnectorConfigError(f"source.kind {config.kind!r} is not 'sql'")
        return cls(config.settings["url"], config.categories, timeout=config.timeout)

    def fetch(self, query: SourceQuery) -> RecordSet:
        """Fetch the records of the requested categories this connector maps.

        Raises:
            ConnectorTimeout: the statement or the wait for a pooled connection took too long.
            ConnectorUnavailable: the database refused, failed, or rejected a query.
            ConnectorError: "bad_response" if a mapped column has no JSON form.
        """
        wanted = wanted_categories(query, self.categories)
        if not wanted:
            return RecordSet()
        records: list[Record] = []
        try:
            with self._engine.get().connect() as connection:
                for category in wanted:
                    rule = self._rules[category]
                    result = connection.execute(text(rule.source), {"local_id": query.local_id})
                    for row in result.mappings():
                        columns = {str(name): value for name, value in row.items()}
                        records.append(Record(category, jsonable(rule.apply(columns))))
        except PoolTimeoutError as exc:
            raise ConnectorTimeout("timed out waiting for a database connection") from exc
        except DBAPIError as exc:
            driver_error = type(exc.orig).__name__
            if getattr(exc.orig, "sqlstate", None) == _QUERY_CANCELED:
                raise ConnectorTimeout("database statement timed out") from exc
            raise ConnectorUnavailable(f"database query failed ({driver_error})") from exc
        except SQLAlchemyError as exc:
            raise ConnectorUnavailable(f"database query failed ({type(exc).__name__})") from exc
        return RecordSet(tuple(records))

    def close(self) -> None:
        """Close pooled connections; a later fetch connects again."""
        self._engine.close()


def _new_engine(url: str, timeout: Timeout) -> Engine:
    engine_url, connect_args = _connection_settings(make_url(url), timeout)
    return create_engine(
        engine_url,
        pool_pre_ping=True,
        # Bound parameters are local ids; keep them out of error messages and logs.
        hide_parameters=True,
        connect_args=connect_args,
    )


def _connection_settings(url: URL, timeout: Timeout) -> tuple[URL, dict[str, Any]]:
    connect_args: dict[str, Any] = {}
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend == "sqlite":
        database = url.database or ""
        if database not in ("", ":memory:") and not database.startswith("file:"):
            # Read-only mode also stops SQLite from creating an empty file at a mistyped path.
            url = url.set(
                database="file:" + quote(database),
                query={**url.query, "mode": "ro", "uri": "true"},
            )
        connect_args["timeout"] = timeout.read
    elif backend == "postgresql" and driver in ("psycopg", "psycopg2"):
        statement_ms = max(1, math.ceil(timeout.read * 1000))
        own = f"-c statement_timeout={statement_ms} -c default_transaction_read_only=on"
        # connect_args replace the URL's own "options", so keep those (e.g. a search_path).
        existing = url.query.get("options")
        connect_args["options"] = f"{existing} {own}" if isinstance(existing, str) else own
        # libpq takes whole seconds here.
        connect_args["connect_timeout"] = max(1, math.ceil(timeout.connect))
    return url, connect_args
