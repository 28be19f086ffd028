"""`hub serve` turns Nagle's algorithm off on every connection it accepts.

uvicorn's worker processes share a listening socket made without naming its protocol, so asyncio
leaves Nagle on for what it accepts, and every answer on a kept-alive connection would wait for
the client's delayed acknowledgement (about 40 ms). The test builds the same kind of socket.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from hub.api import serving
from hub.api.serving import NoDelayH11Protocol


async def _empty_app(scope: Any, receive: Any, send: Any) -> None:  # never reached
    raise AssertionError("no request is sent")


def _nodelay_of_accepted_connection() -> int:
    seen: asyncio.Queue[int] = asyncio.Queue()

    class Probe(NoDelayH11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            seen.put_nowait(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    async def main() -> int:
        # As uvicorn's Config.bind_socket makes it for `--workers N`: no protocol named.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        config = uvicorn.Config(_empty_app, http=NoDelayH11Protocol, log_level="warning")
        config.load()
        state = ServerState()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Probe(config=config, server_state=state, app_state={}), sock=listener
        )
        try:
            host, port = listener.getsockname()
            _, writer = await asyncio.open_connection(host, port)
            value = await asyncio.wait_for(seen.get(), timeout=10)
            writer.close()
            return value
        finally:
            server.close()

    return asyncio.run(main())


def test_accepted_connections_have_nagle_off() -> None:
    assert _nodelay_of_accepted_connection() != 0


def test_hub_serve_uses_the_no_delay_protocol(monkeypatch: Any, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from hub.cli import app

    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: captured.update(kwargs))
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "var"))
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    result = runner.invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert captured["http"] is serving.NoDelayH11Protocol
    assert captured["workers"] == 2
    assert captured["access_log"] is False  # hub.api.access_log logs route templates instead
    assert captured["log_config"]["loggers"]["hub"]["level"] == "INFO"
