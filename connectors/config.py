"""Connector configuration: which source system to ask, and how its rows map to data categories.

Each agency's connector is described by one TOML file::

    [source]
    kind = "sql"                            # or "rest"
    url = "sqlite:////abs/path/police.db"   # sql: any SQLAlchemy URL; a relative SQLite path is
                                            # taken relative to this file
    # rest: base_url = "https://records.example.org/social-care"
    #       token_file = "social-care.token"  # bearer token, read when the connector first connects
    #       client_cert = "client.pem"        # optional mutual TLS, instead of or besides the token
    #       client_key = "client.key"         # (only with client_cert)
    #       ca_file = "ca.pem"                # CA bundle that verifies the source's certificate
    connect_timeout = 2.0                   # seconds, optional
    read_timeout = 5.0                      # seconds, optional; also the SQL statement timeout

    [categories.police_contact]
    query = '''SELECT person_id, occurred_on, kind, outcome, officer_name
               FROM contacts WHERE person_id = :local_id'''
    # rest: path = "/people/{local_id}/contacts"
    fields = ["occurred_on", "kind", "outcome"]
    third_party = ["officer_name"]

Rules, all checked when the file is read (:class:`ConnectorConfigError` names the offending key):

- ``[source]`` and at least one ``[categories.<name>]`` table; no other keys anywhere.
- Relative file paths (``token_file``, ``client_cert``, ``client_key``, ``ca_file`` and a SQLite
  database path) are resolved against the directory of the TOML file and stored absolute.
- SQL: each category has one ``query``: a single ``SELECT`` (no ``;`` except a trailing one, no
  comments, no ``INTO``) whose only bound parameter is ``:local_id``. The local id is always bound,
  never formatted into the text.
- REST: each category has one ``path`` starting with ``/`` and holding ``{local_id}`` exactly once.
  The answer is a JSON object (one record) or a list of objects; 404 means no records.
- ``fields`` are the columns that may leave the source; every other column is dropped.
  ``third_party`` columns name other people (officers, workers, teachers): they leave only as
  ``"[redacted]"``. A column may not be in both lists.
"""

from __future__ import annotations

import os
import re
import string
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from connectors.errors import ConnectorConfigError
from connectors.models import Timeout

REDACTED = "[redacted]"

# kind -> (required settings, optional settings)
_KIND_SETTINGS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "sql": (frozenset({"url"}), frozenset()),
    "rest": (
        frozenset({"base_url"}),
        frozenset({"token_file", "client_cert", "client_key", "ca_file"}),
    ),
}
_PATH_SETTINGS = frozenset({"token_file", "client_cert", "client_key", "ca_file"})
_RULE_SOURCE_KEY = {"sql": "query", "rest": "path"}
_TIMEOUT_KEYS = {"connect_timeout": "connect", "read_timeout": "read"}
_CATEGORY_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class CategoryRule:
    """How one category is read from a source, and which of its columns may leave.

    ``source`` is the SQL query or the REST path template.
    """

    source: str
    fields: tuple[str, ...]
    third_party: tuple[str, ...] = ()

    def apply(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Keep the mapped columns of ``row``, redact third parties, drop everything else.

        A mapped column missing from the row is left out rather than invented. A third-party
        column that is present becomes ``"[redacted]"``; an empty one (``None``) stays ``None``
        since it names nobody.
        """
        kept = {name: row[name] for name in self.fields if name in row}
        for name in self.third_party:
            if name in row:
                kept[name] = None if row[name] is None else REDACTED
        return kept


@dataclass(frozen=True)
class ConnectorConfig:
    """A validated connector configuration.

    ``settings`` holds the kind's own keys (``url`` for SQL; ``base_url``, ``token_file``,
    ``client_cert``, ``client_key``, ``ca_file`` for REST) with file paths absolute.

    Raises:
        ConnectorConfigError: on construction, if any rule in the module docstring is broken.
    """

    kind: str
    settings: Mapping[str, Any]
    categories: Mapping[str, CategoryRule]
    timeout: Timeout = field(default_factory=Timeout)

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base_dir: Path) -> ConnectorConfig:
        """Build a config from parsed TOML (or from :meth:`to_mapping` output).

        Relative file paths are resolved against ``base_dir``.

        Raises:
            ConnectorConfigError: if the mapping breaks any rule in the module docstring.
        """
        data = _check_keys(data, "config", required={"source", "categories"})
        source = _as_mapping(data["source"], "source")
        kind = source.get("kind")
        if not isinstance(kind, str):
            raise ConnectorConfigError("source.kind is required and must be a string")
        if kind not in _KIND_SETTINGS:
            raise ConnectorConfigError(
                f"source.kind {kind!r} is unknown; expected one of {sorted(_KIND_SETTINGS)}"
            )
        required, optional = _KIND_SETTINGS[kind]
        _check_keys(
            source, "source", required=required | {"kind"}, optional=optional | set(_TIMEOUT_KEYS)
        )

        settings: dict[str, Any] = {}
        for key in sorted(required | optional):
            if key not in source:
                continue
            value = source[key]
            if not isinstance(value, str) or not value:
                raise ConnectorConfigError(f"source.{key} must be a non-empty string")
            if key in _PATH_SETTINGS:
                value = _absolute(base_dir, value)
            elif key == "url":
                value = _resolve_sqlite_path(value, base_dir)
            settings[key] = value

        try:
            timeout = Timeout(
                **{attr: source[key] for key, attr in _TIMEOUT_KEYS.items() if key in source}
            )
        except ValueError as exc:
            raise ConnectorConfigError(
                "source.connect_timeout and source.read_timeout must be positive numbers"
            ) from exc

        tables = _as_mapping(data["categories"], "categories")
        source_key = _RULE_SOURCE_KEY[kind]
        categories: dict[str, CategoryRule] = {}
        for name, table in tables.items():
            where = f"categories.{name}"
            table = _check_keys(
                table, where, required={source_key, "fields"}, optional={"third_party"}
            )
            categories[str(name)] = CategoryRule(
                source=table[source_key],
                fields=_string_list(table["fields"], f"{where}.fields"),
                third_party=_string_list(table.get("third_party", []), f"{where}.third_party"),
            )
        return cls(kind=kind, settings=settings, categories=categories, timeout=timeout)

    def to_mapping(self) -> dict[str, Any]:
        """The config as plain JSON-able data, accepted back by :meth:`from_mapping`."""
        source: dict[str, Any] = {"kind": self.kind, **self.settings}
        source["connect_timeout"] = self.timeout.connect
        source["read_timeout"] = self.timeout.read
        source_key = _RULE_SOURCE_KEY[self.kind]
        return {
            "source": source,
            "categories": {
                name: {
                    source_key: rule.source,
                    "fields": list(rule.fields),
                    "third_party": list(rule.third_party),
                }
                for name, rule in self.categories.items()
            },
        }


def load_connector_config(path: Path) -> ConnectorConfig:
    """Read one agency's connector config from a TOML file.

    Raises:
        ConnectorConfigError: if the file cannot be read, is not TOML, or breaks a rule.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConnectorConfigError(f"cannot read connector config {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConnectorConfigError(f"connector config {path} is not valid TOML: {exc}") from exc
    return ConnectorConfig.from_mapping(data, base_dir=path.parent)


def _validate(config: ConnectorConfig) -> None:
    if config.kind not in _KIND_SETTINGS:
        raise ConnectorConfigError(
            f"source.kind {config.kind!r} is unknown; expected one of {sorted(_KIND_SETTINGS)}"
        )
    if not isinstance(config.timeout, Timeout):
        raise ConnectorConfigError("timeout must be a Timeout")
    required, optional = _KIND_SETTINGS[config.kind]
    _check_keys(config.settings, "source", required=required, optional=optional)
    for key, value in config.settings.items():
        if not isinstance(value, str) or not value:
            raise ConnectorConfigError(f"source.{key} must be a non-empty string")
        if key in _PATH_SETTINGS and not os.path.isabs(value):
            raise ConnectorConfigError(f"source.{key} must be an absolute path")
    if "client_key" in config.settings and "client_cert" not in config.settings:
        raise ConnectorConfigError("source.client_key needs source.client_cert")
    if config.kind == "sql":
        _check_sql_url(config.settings["url"])
    else:
        _check_base_url(config.settings["base_url"])

    if not config.categories:
        raise ConnectorConfigError("categories: at least one category is required")
    for name, rule in config.categories.items():
        where = f"categories.{name}"
        if not isinstance(name, str) or not _CATEGORY_NAME.fullmatch(name):
            raise ConnectorConfigError(
                f"{where}: category names are lower-case letters, digits and '_'"
            )
        if not isinstance(rule, CategoryRule):
            raise ConnectorConfigError(f"{where} must be a CategoryRule")
        if not rule.fields:
            raise ConnectorConfigError(f"{where}.fields must name at least one column")
        for list_name, names in (("fields", rule.fields), ("third_party", rule.third_party)):
            _string_list(names, f"{where}.{list_name}")
        both = set(rule.fields) & set(rule.third_party)
        if both:
            raise ConnectorConfigError(
                f"{where}: columns {sorted(both)} are in both fields and third_party"
            )
        if config.kind == "sql":
            _check_select(rule.source, f"{where}.query")
        else:
            _check_path(rule.source, f"{where}.path")


def _as_mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConnectorConfigError(f"{where} must be a table")
    return value


def _check_keys(
    value: object, where: str, *, required: Collection[str], optional: Collection[str] = ()
) -> Mapping[str, Any]:
    value = _as_mapping(value, where)
    unknown = sorted(str(k) for k in value if k not in required and k not in optional)
    if unknown:
        raise ConnectorConfigError(f"{where}: unknown key(s) {unknown}")
    missing = sorted(k for k in required if k not in value)
    if missing:
        raise ConnectorConfigError(f"{where}: missing required key(s) {missing}")
    return value


def _string_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ConnectorConfigError(f"{where} must be a list of non-empty strings")
    if len(set(value)) != len(value):
        raise ConnectorConfigError(f"{where} lists a column twice")
    return tuple(value)


def _absolute(base_dir: Path, value: str) -> str:
    # abspath normalises "..", and unlike resolve() it keeps symlinks the operator chose.
    return os.path.abspath(base_dir / value)


def _parse_sql_url(value: str) -> URL:
    try:
        return make_url(value)
    except (ArgumentError, ValueError) as exc:
        raise ConnectorConfigError("source.url is not a valid SQLAlchemy URL") from exc


def _is_sqlite_file(url: URL) -> bool:
    database = url.database or ""
    return (
        url.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not database.startswith("file:")
    )


def _resolve_sqlite_path(value: str, base_dir: Path) -> str:
    url = _parse_sql_url(value)
    if _is_sqlite_file(url) and not os.path.isabs(url.database or ""):
        url = url.set(database=_absolute(base_dir, url.database or ""))
        return url.render_as_string(hide_password=False)
    return value


def _check_sql_url(value: str) -> None:
    url = _parse_sql_url(value)
    if _is_sqlite_file(url) and not os.path.isabs(url.database or ""):
        raise ConnectorConfigError("source.url: the SQLite database path must be absolute")


def _check_base_url(value: str) -> None:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ConnectorConfigError("source.base_url is not a valid URL") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConnectorConfigError("source.base_url must be an absolute http(s) URL")
    if url.query or url.fragment:
        raise ConnectorConfigError("source.base_url must not have a query or fragment")


def _check_select(query: object, where: str) -> None:
    if not isinstance(query, str) or not query.strip():
        raise ConnectorConfigError(f"{where} must be a non-empty string")
    statement = query.strip()
    statement = statement.removesuffix(";").rstrip()
    # These checks are deliberately blunt: a connector only ever reads, so anything that could
    # hide a second statement or write is refused rather than parsed.
    if ";" in statement:
        raise ConnectorConfigError(f"{where} must be a single statement (found ';')")
    if "--" in statement or "/*" in statement:
        raise ConnectorConfigError(f"{where} must not contain SQL comments")
    if not re.match(r"select\b", statement, re.IGNORECASE):
        raise ConnectorConfigError(f"{where} must be a SELECT statement")
    if re.search(r"\binto\b", statement, re.IGNORECASE):
        raise ConnectorConfigError(f"{where} must not use INTO")
    params = set(text(statement).compile().params)
    if "local_id" not in params:
        raise ConnectorConfigError(f"{where} must use the bound parameter :local_id")
    if params != {"local_id"}:
        raise ConnectorConfigError(
            f"{where} may bind only :local_id, found {sorted(params - {'local_id'})}"
        )


def _check_path(path: object, where: str) -> None:
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
        raise ConnectorConfigError(f"{where} must be a path starting with a single '/'")
    try:
        placeholders = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(path)
            if name is not None
        ]
    except ValueError as exc:
        raise ConnectorConfigError(f"{where} has unbalanced braces") from exc
    if placeholders != [("local_id", "", None)]:
        raise ConnectorConfigError(
            f"{where} must contain {{local_id}} exactly once and no other placeholder"
        )
