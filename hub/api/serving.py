"""How `hub serve` puts the API on the network: uvicorn, with Nagle's algorithm off, the hub's
own loggers (among them the access log, `hub.access`) written beside uvicorn's, and, with
`--workers N`, one listening socket per worker process so the kernel spreads connections.

Workers. uvicorn's own supervisor hands one listening socket to every worker. A worker's event
loop that wakes for it accepts every connection waiting, so a client that opens its kept-alive
connections at once (a load balancer, an agency's connection pool) lands them all on one worker
while the others idle. `serve` instead starts each worker with a socket of its own, bound to the
same address with `SO_REUSEPORT`; the kernel then assigns each new connection to one of them by
its address hash.

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
import logging
import multiprocessing
import signal
import socket
import threading
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn
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


log = logging.getLogger("hub.serve")

# The exit code of a worker that never started serving (the app, or binding, is broken): starting
# it again would fail the same way, so the whole server stops instead. uvicorn uses the same.
STARTUP_FAILURE = 3


def _config(app: str, *, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        factory=True,
        host=host,
        port=port,
        http=NoDelayH11Protocol,
        # Paths hold case ids and pseudonyms; hub.api.access_log logs route templates.
        access_log=False,
        log_config=log_config(),
    )


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port) that other workers may bind as well."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _worker(app: str, host: str, port: int) -> None:
    """One worker process: its own socket, one uvicorn server, until SIGTERM or SIGINT."""
    server = uvicorn.Server(_config(app, host=host, port=port))
    try:
        server.run(sockets=[reuse_port_socket(host, port)])
    except (Exception, SystemExit):
        if server.started:
            raise
        log.exception("the worker could not start")
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


def serve(app: str, *, host: str, port: int, workers: int) -> None:
    """Serve the ASGI app factory `app` ("module:function") until SIGTERM or SIGINT.

    One worker serves in this process; more run as child processes, each with its own socket
    (see the module's docstring), and one that dies in service is started again.

    Raises OSError if the address cannot be bound, SystemExit(STARTUP_FAILURE) if a worker
    could not start.
    """
    if workers == 1:
        server = uvicorn.Server(_config(app, host=host, port=port))
        server.run()
        if not server.started:
            raise SystemExit(STARTUP_FAILURE)
        return
    # Bind here first, so a port in use fails now with the usual error, not in every child.
    reuse_port_socket(host, port).close()
    _Supervisor(app, host=host, port=port, workers=workers).run()


class _Supervisor:
    def __init__(self, app: str, *, host: str, port: int, workers: int) -> None:
        self._args = (app, host, port)
        self._workers = workers
        self._context = multiprocessing.get_context("spawn")
        self._stop = threading.Event()
        self.failed = False

    def _start(self) -> BaseProcess:
        process = self._context.Process(target=_worker, args=self._args, name="hub-worker")
        process.start()
        return process

    def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())
        running = [self._start() for _ in range(self._workers)]
        try:
            while not self._stop.wait(0.5):
                for slot, process in enumerate(running):
                    if process.is_alive():
                        continue
                    if process.exitcode == STARTUP_FAILURE:
                        log.error("a worker failed to start; stopping the server")
                        self.failed = True
                        self._stop.set()
                        break
                    log.warning(
                        "worker %s ended (exit %s); starting another", process.pid, process.exitcode
                    )
                    running[slot] = self._start()
        finally:
            for process in running:
                if process.is_alive():
                    process.terminate()  # SIGTERM: uvicorn finishes what is in flight
            for process in running:
                process.join(30)
                if process.is_alive():
                    process.kill()
                    process.join()
        if self.failed:
            raise SystemExit(STARTUP_FAILURE)
