"""`hub serve` turns Nagle's algorithm off on every connection it accepts.

uvicorn's worker processes share a listening socket made without naming its protocol, so asyncio
leaves Nagle on for what it accepts, and every answer on a kept-alive connection would wait for
the client's delayed acknowledgement (about 40 ms). The test builds the same kind of socket.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from uvicorn.server import ServerState

from hub.api import serving
from hub.api.serving import NoDelayH11Protocol
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


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

    # A loop of its own on a thread of its own, whatever else the test process is running.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, main()).result()


def test_accepted_connections_have_nagle_off() -> None:
    assert _nodelay_of_accepted_connection() != 0


def test_hub_serve_serves_the_app_through_serving(monkeypatch: Any, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from hub.cli import app

    captured: dict[str, Any] = {}
    monkeypatch.setattr(
        serving, "serve", lambda *args, **kwargs: captured.update(kwargs, app=args[0])
    )
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path / "var"))
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    result = runner.invoke(app, ["serve", "--workers", "2", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert captured == {"app": "hub.api.app:app_from_env", "host": "127.0.0.1", "port": 8123,
                        "workers": 2}  # fmt: skip


def test_workers_log_route_templates_with_nagle_off(monkeypatch: Any) -> None:
    # uvicorn.Config would configure this process's logging; record what it is given instead.
    given: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "Config", lambda app, **kwargs: given.update(kwargs, app=app))
    serving._config("hub.api.app:app_from_env", host="127.0.0.1", port=8000)
    assert given["http"] is NoDelayH11Protocol
    assert given["access_log"] is False  # hub.api.access_log logs route templates instead
    assert given["log_config"]["loggers"]["hub"]["level"] == "INFO"


@contextmanager
def _served(
    factory: str, workers: int, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    code = (
        "from hub.api.serving import serve; "
        f"serve({factory!r}, host='127.0.0.1', port={port}, workers={workers})"
    )
    with (tmp_path / "serve.log").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _pid_over_new_connection(port: int) -> int | None:
    try:
        with httpx.Client(trust_env=False, timeout=5) as client:
            return int(client.get(f"http://127.0.0.1:{port}/").text)
    except httpx.HTTPError:
        return None


def _wait_for_pids(
    port: int, *, at_least: int, excluding: frozenset[int] = frozenset()
) -> set[int]:
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(seen - excluding) < at_least:
        pid = _pid_over_new_connection(port)
        if pid is not None:
            seen.add(pid)
        else:
            time.sleep(0.2)
    return seen - excluding


def test_connections_spread_over_every_worker_and_a_dead_one_is_replaced(
    tmp_path: Path,
) -> None:
    with _served("tests.api.pid_app:app", 2, tmp_path) as (process, port):
        # Each request on a new connection: the kernel spreads them over the workers' sockets.
        workers = _wait_for_pids(port, at_least=2)
        assert len(workers) == 2 and process.pid not in workers
        # Kept-alive connections opened together do not all land on one worker either.
        clients = [httpx.Client(trust_env=False, timeout=5) for _ in range(16)]
        try:
            answered = {int(c.get(f"http://127.0.0.1:{port}/").text) for c in clients}
        finally:
            for client in clients:
                client.close()
        assert answered == workers

        os.kill(next(iter(workers)), signal.SIGKILL)
        replacement = _wait_for_pids(port, at_least=1, excluding=frozenset(workers))
        assert len(replacement) == 1

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    for pid in workers | replacement:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def test_a_worker_that_cannot_start_stops_the_server(tmp_path: Path) -> None:
    with _served("tests.api.pid_app:broken", 2, tmp_path) as (process, _):
        assert process.wait(timeout=120) == serving.STARTUP_FAILURE
