"""How `hub serve` puts the API on the network: uvicorn, with Nagle's algorithm off, and the
hub's own loggers (among them the access log, `hub.access`) written beside uvicorn's.

With `--workers N` uvicorn binds the listening socket itself and hands it to each worker
process. That socket is made without naming its protocol, so asyncio does not recognise the
connections it accepts as TCP and leaves Nagle's algorithm on. An answer is written as headers
and then body; on a kept-alive connection the body waits for the client's delayed
acknowledgement of the headers, about 40 ms on every request. Turning `TCP_NODELAY` on for
each accepted connection, as asyncio does for sockets it made itself, removes that wait.
"""

from __future__ import annotations

import asyncio
import copy
import socket
from typing import Any

from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def disable_nagle(transport: asyncio.BaseTransport) -> None:
    """Turn on TCP_NODELAY for a transport's TCP socket; leave other sockets alone."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in _TCP_FAMILIES:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with every accepted TCP connection set to TCP_NODELAY."""

    # uvicorn narrows the transport type the same way, with the same ignore.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        disable_nagle(transport)
        super().connection_made(transport)


def log_config() -> dict[str, Any]:
    """uvicorn's logging set-up plus the `hub` loggers at INFO on its standard-error handler.

    Applied by uvicorn in each worker process; without it the hub's INFO lines would go
    nowhere, since nothing else configures logging.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["hub"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
