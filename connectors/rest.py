"""A connector that reads an agency's records from its REST API over httpx."""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from connectors._lazy import Lazy
from connectors.config import CategoryRule, ConnectorConfig
from connectors.errors import (
    ConnectorConfigError,
    ConnectorError,
    ConnectorTimeout,
    ConnectorUnavailable,
)
from connectors.models import Connector, Record, RecordSet, SourceQuery, Timeout, wanted_categories

# A record system answering one person's category with more than this is misbehaving; stop
# reading rather than hold it all in memory.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024


class RestConnector(Connector):
    """GETs each category's path, with the person's local id escaped into it.

    An answer is a JSON object (one record) or a list of objects; 404 means no records. The
    bearer token and TLS files are read on the first fetch, so a rotated token is picked up after
    :meth:`close`. Redirects are not followed, so the token is never sent anywhere else.

    ``transport`` lets tests swap the network for ``httpx.MockTransport``.

    Raises:
        ConnectorConfigError: if the base URL, a path template or a file path is invalid.
    """

    def __init__(
        self,
        base_url: str,
        categories: Mapping[str, CategoryRule],
        *,
        token_file: str | Path | None = None,
        client_cert: str | Path | None = None,
        client_key: str | Path | None = None,
        ca_file: str | Path | None = None,
        timeout: Timeout = Timeout(),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        settings: dict[str, Any] = {"base_url": base_url}
        for key, value in (
            ("token_file", token_file),
            ("client_cert", client_cert),
            ("client_key", client_key),
            ("ca_file", ca_file),
        ):
            if value is not None:
                settings[key] = str(value)
        # Validating through ConnectorConfig keeps one set of rules for files and for code.
        config = ConnectorConfig(
            kind="rest", settings=settings, categories=dict(categories), timeout=timeout
        )
        self._rules = dict(config.categories)
        self.categories: frozenset[str] = frozenset(self._rules)
        self._client = Lazy(
            partial(_new_client, dict(config.settings), timeout, transport), httpx.Client.close
        )

    @classmethod
    def from_config(cls, config: ConnectorConfig) -> RestConnector:
        """Build the connector a ``kind = "rest"`` config describes.

        Raises:
            ConnectorConfigError: if the config is not a REST one.
        """
        if config.kind != "rest":
            raise ConnectorConfigError(f"source.kind {config.kind!r} is not 'rest'")
        settings = config.settings
        return cls(
            settings["base_url"],
            config.categories,
            token_file=settings.get("token_file"),
            client_cert=settings.get("client_cert"),
            client_key=settings.get("client_key"),
            ca_file=settings.get("ca_file"),
            timeout=config.timeout,
        )

    def fetch(self, query: SourceQuery) -> RecordSet:
        """Fetch the records of the requested categories this connector maps.

        Raises:
            ConnectorTimeout: connecting or reading took longer than the timeout.
            ConnectorUnavailable: the source could not be reached or answered non-2xx, non-404.
            ConnectorConfigError: the token or TLS files cannot be read.
            ConnectorError: "bad_response" for an answer that is not JSON objects, or too large;
                "bad_query" for a local id that cannot be placed in a path.
        """
        wanted = wanted_categories(query, self.categories)
        if not wanted:
            return RecordSet()
        # quote() leaves dots alone, and httpx would resolve "." and ".." as path segments.
        if query.local_id in (".", ".."):
            raise ConnectorError("local id cannot be used as a path segment", code="bad_query")
        local_id = quote(query.local_id, safe="")
        client = self._client.get()
        records: list[Record] = []
        for category in wanted:
            rule = self._rules[category]
            body = self._get(client, rule.source.format(local_id=local_id))
            if body is not None:
                records.extend(Record(category, rule.apply(item)) for item in _objects(body))
        return RecordSet(tuple(records))

    def close(self) -> None:
        """Close the HTTP client; a later fetch reads the token again and reconnects."""
        self._client.close()

    def _get(self, client: httpx.Client, path: str) -> bytes | None:
        # Messages carry the exception type only: httpx's own text can include the URL, which
        # holds the local id.
        try:
            with client.stream("GET", path) as response:
                if response.status_code == httpx.codes.NOT_FOUND:
                    return None
                if not response.is_success:
                    raise ConnectorUnavailable(f"source answered HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise ConnectorError(
                            f"source answer is larger than {MAX_RESPONSE_BYTES} bytes",
                            code="bad_response",
                        )
                return bytes(body)
        except httpx.TimeoutException as exc:
            raise ConnectorTimeout(f"source did not answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ConnectorUnavailable(f"cannot reach source ({type(exc).__name__})") from exc
        except httpx.DecodingError as exc:
            raise ConnectorError("source answer cannot be decoded", code="bad_response") from exc
        except httpx.HTTPError as exc:
            raise ConnectorUnavailable(f"request to source failed ({type(exc).__name__})") from exc


def _new_client(
    settings: Mapping[str, str], timeout: Timeout, transport: httpx.BaseTransport | None
) -> httpx.Client:
    return httpx.Client(
        base_url=settings["base_url"],
        timeout=httpx.Timeout(timeout.read, connect=timeout.connect),
        headers=_headers(settings),
        verify=_tls_context(settings),
        follow_redirects=False,
        transport=transport,
    )


def _headers(settings: Mapping[str, str]) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    token_file = settings.get("token_file")
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConnectorConfigError("cannot read source.token_file") from exc
        if not token or not token.isprintable() or " " in token:
            raise ConnectorConfigError("source.token_file must hold one token on one line")
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _tls_context(settings: Mapping[str, str]) -> ssl.SSLContext | bool:
    ca_file = settings.get("ca_file")
    client_cert = settings.get("client_cert")
    if ca_file is None and client_cert is None:
        return True
    try:
        context = ssl.create_default_context(cafile=ca_file)
        if client_cert is not None:
            context.load_cert_chain(client_cert, settings.get("client_key"))
    except (OSError, ssl.SSLError) as exc:
        raise ConnectorConfigError(
            "cannot load source.ca_file, source.client_cert or source.client_key"
        ) from exc
    return context


def _objects(body: bytes) -> list[Mapping[str, Any]]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ConnectorError("source answer is not JSON", code="bad_response") from exc
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ConnectorError(
            "source answer is not a JSON object or a list of objects", code="bad_response"
        )
    return items
