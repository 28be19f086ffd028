"""Helper servers, each in a process of its own so it never shares a GIL with what is measured.

    python -m bench.servers sources <demo sources dir> <port>   the demo's REST record systems
    python -m bench.servers opa <port>                          the OPA-compatible test server

Both serve on 127.0.0.1 until terminated.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from starlette.types import ASGIApp

from hub.demo.sources import SourceServer, rest_source_app


def _serve(app: ASGIApp, port: int) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with SourceServer(app, host="127.0.0.1", port=port):
        stop.wait()


def main(argv: list[str]) -> None:
    kind = argv[0]
    if kind == "sources":
        _serve(rest_source_app(Path(argv[1])), int(argv[2]))
    elif kind == "opa":
        from tests.policies.opa_server import opa_server_app

        _serve(opa_server_app(), int(argv[1]))
    else:
        raise SystemExit(f"unknown server {kind!r}; expected sources or opa")


if __name__ == "__main__":
    main(sys.argv[1:])
