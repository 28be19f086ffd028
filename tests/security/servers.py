"""Misbehaving HTTP servers on loopback: a slow OPA, a source system that stalls or answers
garbage. Real sockets and real HTTP, so the hub's own clients meet them as they would in use."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = Callable[[], tuple[int, str, bytes]]  # (status, content type, body)


class InFlight:
    """Counts the requests a server is handling now, the most it ever handled at once, and
    how many it received."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.received = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.received += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.now -= 1


@contextmanager
def serving(
    answer: Answer, *, delay: threading.Event | None = None, counter: InFlight | None = None
) -> Iterator[str]:
    """Serve `answer` to every GET and POST; with `delay`, each request first waits for it;
    with `counter`, each request is counted while it is being handled.

    Yields the server's base URL. On exit the event is set, so stalled handlers finish.
    """
    stalled = delay
    counting = counter or InFlight()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            with counting:
                self._answer()

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            if stalled is not None:
                stalled.wait(timeout=30)
            status, content_type, body = answer()
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting, as it should

        do_GET = _reply
        do_POST = _reply

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        if stalled is not None:
            stalled.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def wait_until(condition: Callable[[], bool], what: str, *, within: float = 30.0) -> None:
    """Poll `condition` until it holds; fail naming `what` if it still does not after `within`
    seconds (a bound for a hung test, not a measurement)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.01)
