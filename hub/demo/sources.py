"""The demo panel's synthetic source systems, and the connector configs that reach them.

Northtown Police and Northtown Academy keep their records in SQLite files; Northtown Children's
Services and Brightpath Youth answer over REST, both served by one small FastAPI app under
``/social-care`` and ``/youth-work``, each prefix with its own bearer token::

    GET /social-care/people/{local_id}/identity             one object
    GET /social-care/people/{local_id}/contact              one object
    GET /social-care/people/{local_id}/social-care          list
    GET /social-care/people/{local_id}/protective-factors   list
    GET /youth-work/people/{local_id}/interventions         list
    GET /youth-work/people/{local_id}/protective-factors    list

A person the source does not know is 404; a missing or wrong token is 401.

Typical use (``hub serve --demo-sources``)::

    app = rest_source_app(directory)            # reads the token files on each request
    with SourceServer(app) as server:           # port 0: any free port
        configs = write_demo_sources(directory, rest_base_url=server.url)
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Self

import uvicorn
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from connectors import ConnectorConfig
from hub.demo.people import (
    ACADEMY,
    CHILDRENS_SERVICES,
    DEMO_AGENCIES,
    DEMO_PEOPLE,
    LOCAL_ID_COLUMNS,
    POLICE,
    SOURCE_RECORDS,
    YOUTH_WORK,
    Rows,
)

# category -> (table or collection, fields, third_party)
_Mapping = dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]
_IDENTITY = ("given_name", "family_name", "date_of_birth")

_SQL_SOURCES: dict[str, _Mapping] = {
    POLICE: {
        "identity": ("people", _IDENTITY, ()),
        "police_contact": ("contacts", ("occurred_on", "kind", "outcome"), ("officer_name",)),
        "behavioural_indicators": ("indicators", ("recorded_on", "indicator"), ()),
    },
    ACADEMY: {
        "identity": ("pupils", _IDENTITY, ()),
        "education": (
            "attendance",
            ("academic_year", "attendance_pct", "exclusions", "pastoral_note"),
            ("teacher_name",),
        ),
        "behavioural_indicators": ("behaviour", ("recorded_on", "indicator"), ("logged_by",)),
        "protective_factors": ("strengths", ("factor", "noted_on"), ()),
    },
}

# slug -> (URL prefix, mapping)
_REST_SOURCES: dict[str, tuple[str, _Mapping]] = {
    CHILDRENS_SERVICES: (
        "social-care",
        {
            "identity": ("identity", _IDENTITY, ()),
            "contact": ("contact", ("address", "phone"), ()),
            "social_care": (
                "social-care",
                ("opened_on", "plan_type", "status"),
                ("allocated_worker",),
            ),
            "protective_factors": ("protective-factors", ("factor", "noted_on"), ()),
        },
    ),
    YOUTH_WORK: (
        "youth-work",
        {
            "intervention_history": (
                "interventions",
                ("programme", "started_on", "ended_on", "sessions_attended"),
                ("youth_worker",),
            ),
            "protective_factors": ("protective-factors", ("factor", "noted_on"), ()),
        },
    ),
}

# Collections that hold at most one row per person are answered as an object, not a list.
_SINGLE_ROW_COLLECTIONS = frozenset({"identity", "contact"})

_SQL_TYPES = {bool: "INTEGER", int: "INTEGER", float: "REAL", str: "TEXT"}


def write_demo_sources(directory: Path, *, rest_base_url: str) -> dict[str, Path]:
    """Create the demo source systems' files and one connector config per agency.

    Writes ``northtown-police.db`` and ``northtown-academy.db`` (SQLite), a bearer token file per
    REST source (mode 0600) and ``<slug>.toml`` per agency, all in ``directory``. Running it
    again rewrites the same content and keeps existing tokens. ``rest_base_url`` is where
    :func:`rest_source_app` is served, e.g. ``http://127.0.0.1:8101``.

    Returns:
        Agency slug -> path of its connector TOML.

    Raises:
        OSError: if the files cannot be written.
        ConnectorConfigError: if ``rest_base_url`` is not an http(s) URL.
    """
    directory.mkdir(parents=True, exist_ok=True)
    base_url = rest_base_url.rstrip("/")
    configs: dict[str, Path] = {}
    for agency in DEMO_AGENCIES:
        slug = agency.slug
        if slug in _SQL_SOURCES:
            _write_sqlite(directory / f"{slug}.db", SOURCE_RECORDS[slug])
            mapping = _sql_config(slug)
        else:
            _ensure_token(_token_path(directory, slug))
            mapping = _rest_config(slug, base_url)
        # Parsing the mapping first means a broken demo fails here, not in the hub.
        ConnectorConfig.from_mapping(mapping, base_dir=directory)
        path = directory / f"{slug}.toml"
        _write_atomically(path, _to_toml(mapping).encode("utf-8"))
        configs[slug] = path
    return configs


def rest_source_app(directory: Path) -> FastAPI:
    """The children's services and youth work record systems as one FastAPI app.

    Tokens are read from ``directory`` on every request, so the app may be served before
    :func:`write_demo_sources` has written them; until then every request gets 503.
    """
    app = FastAPI(
        title="Northtown demo source systems",
        description="Synthetic record systems of the demo panel. Not a hub API.",
    )
    for slug, (prefix, _) in _REST_SOURCES.items():
        id_column = LOCAL_ID_COLUMNS[slug]
        known = frozenset(p.local_ids[slug] for p in DEMO_PEOPLE if slug in p.local_ids)
        for collection, rows in SOURCE_RECORDS[slug].items():
            app.add_api_route(
                f"/{prefix}/people/{{local_id}}/{collection}",
                _collection_endpoint(
                    token_path=_token_path(directory, slug),
                    rows=rows,
                    id_column=id_column,
                    known=known,
                    single=collection in _SINGLE_ROW_COLLECTIONS,
                ),
                methods=["GET"],
                name=f"{slug}:{collection}",
            )
    return app


class SourceServer:
    """Serve an ASGI app with uvicorn on a real socket, in a background thread.

    ``port=0`` picks a free port; :attr:`url` tells which. Give ``ssl_certfile`` and
    ``ssl_keyfile`` to serve HTTPS, and ``ssl_ca_certs`` with ``require_client_cert`` to demand
    client certificates (mutual TLS).
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_certfile: Path | None = None,
        ssl_keyfile: Path | None = None,
        ssl_ca_certs: Path | None = None,
        require_client_cert: bool = False,
        start_timeout: float = 10.0,
    ) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._ssl_certfile = ssl_certfile
        self._ssl_keyfile = ssl_keyfile
        self._ssl_ca_certs = ssl_ca_certs
        self._require_client_cert = require_client_cert
        self._start_timeout = start_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234``.

        Raises:
            RuntimeError: if the server has not been started.
        """
        if self._socket is None:
            raise RuntimeError("source server is not started")
        port = self._socket.getsockname()[1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        scheme = "https" if self._ssl_certfile is not None else "http"
        return f"{scheme}://{host}:{port}"

    def start(self) -> None:
        """Bind the socket and return once the server accepts connections.

        Raises:
            RuntimeError: if already started, or the server did not start in time.
            OSError: if the address cannot be bound.
        """
        if self._thread is not None:
            raise RuntimeError("source server is already started")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Accepted connections inherit this. Without it, uvicorn's separate writes of headers
            # and body meet the client's delayed ACK and every answer waits about 40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            raise
        config = uvicorn.Config(
            self._app,
            # The process's logging belongs to whoever embeds the server (maybe `hub serve`).
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
            ssl_certfile=self._ssl_certfile,
            ssl_keyfile=self._ssl_keyfile,
            ssl_ca_certs=self._ssl_ca_certs,
            ssl_cert_reqs=ssl.CERT_REQUIRED if self._require_client_cert else ssl.CERT_NONE,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="demo-source-server", daemon=True
        )
        self._socket, self._server, self._thread = sock, server, thread
        thread.start()
        deadline = time.monotonic() + self._start_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("source server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving and wait for the thread (idle connections are closed)."""
        server, thread, sock = self._server, self._thread, self._socket
        self._server = self._thread = self._socket = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=5)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(timeout=5)
        if sock is not None:
            sock.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _collection_endpoint(
    *, token_path: Path, rows: Rows, id_column: str, known: frozenset[str], single: bool
) -> Callable[..., JSONResponse]:
    def endpoint(
        local_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        try:
            expected = token_path.read_text(encoding="utf-8").strip()
        except OSError:
            return JSONResponse({"detail": "source not set up"}, status_code=503)
        scheme, _, presented = (authorization or "").partition(" ")
        # compare_digest takes as long for a nearly right token as for a wrong one.
        if (
            not expected
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(presented.encode(), expected.encode())
        ):
            return JSONResponse(
                {"detail": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        matches = [row for row in rows if row[id_column] == local_id]
        if local_id not in known or (single and not matches):
            return JSONResponse({"detail": "not found"}, status_code=404)
        return JSONResponse(matches[0] if single else matches)

    return endpoint


def _token_path(directory: Path, slug: str) -> Path:
    return directory / f"{slug}.token"


def _ensure_token(path: Path) -> None:
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        os.chmod(path, 0o600)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        # O_CREAT's mode does not apply to a file that already existed (empty).
        os.fchmod(file.fileno(), 0o600)
        file.write(secrets.token_urlsafe(32) + "\n")


def _write_sqlite(path: Path, tables: Mapping[str, Rows]) -> None:
    # Build beside the target and swap it in, so a reader never sees a half-written database.
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    connection = sqlite3.connect(tmp)
    try:
        with connection:
            for table, rows in tables.items():
                columns = _columns(rows)
                ddl = ", ".join(f'"{name}" {sql_type}' for name, sql_type in columns.items())
                connection.execute(f'CREATE TABLE "{table}" ({ddl})')
                placeholders = ", ".join("?" for _ in columns)
                names = ", ".join(f'"{name}"' for name in columns)
                connection.executemany(
                    f'INSERT INTO "{table}" ({names}) VALUES ({placeholders})',  # noqa: S608
                    [tuple(row.get(name) for name in columns) for row in rows],
                )
    finally:
        connection.close()
    os.replace(tmp, path)


def _columns(rows: Rows) -> dict[str, str]:
    """Column name -> SQLite type, in first-seen order, typed by the first non-null value."""
    types: dict[str, str | None] = {}
    for row in rows:
        for name, value in row.items():
            if types.get(name) is None:
                types[name] = None if value is None else _SQL_TYPES[type(value)]
    return {name: sql_type or "TEXT" for name, sql_type in types.items()}


def _sql_config(slug: str) -> dict[str, Any]:
    tables = SOURCE_RECORDS[slug]
    id_column = LOCAL_ID_COLUMNS[slug]
    categories: dict[str, Any] = {}
    for category, (table, fields, third_party) in _SQL_SOURCES[slug].items():
        # Select every column, so the demo shows the mapping (not the query) keeping data in.
        # Table and column names are this module's constants; the local id stays a bound value.
        columns = ", ".join(_columns(tables[table]))
        categories[category] = {
            "query": f"SELECT {columns} FROM {table} WHERE {id_column} = :local_id",  # noqa: S608
            "fields": list(fields),
            "third_party": list(third_party),
        }
    return {
        "source": {"kind": "sql", "url": f"sqlite:///{slug}.db", **_timeouts()},
        "categories": categories,
    }


def _rest_config(slug: str, base_url: str) -> dict[str, Any]:
    prefix, mapping = _REST_SOURCES[slug]
    return {
        "source": {
            "kind": "rest",
            "base_url": f"{base_url}/{prefix}",
            "token_file": f"{slug}.token",
            **_timeouts(),
        },
        "categories": {
            category: {
                "path": f"/people/{{local_id}}/{collection}",
                "fields": list(fields),
                "third_party": list(third_party),
            }
            for category, (collection, fields, third_party) in mapping.items()
        },
    }


def _timeouts() -> dict[str, float]:
    return {"connect_timeout": 2.0, "read_timeout": 5.0}


def _to_toml(mapping: Mapping[str, Any]) -> str:
    """Write the two-level mapping of a connector config as TOML."""
    lines = ["# Written by `hub demo`; rewritten each time it runs.", "", "[source]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in mapping["source"].items()]
    for category, table in mapping["categories"].items():
        lines += ["", f"[categories.{category}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    # JSON's string escapes are valid TOML basic-string escapes, and ensure_ascii keeps it so.
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _write_atomically(path: Path, content: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
