"""Loopback ports for the servers tests start."""

from __future__ import annotations

import os
import random
import socket

# Below Linux's ephemeral range (32768-60999), so no client connection's own port is taken.
_LOW, _HIGH = 20_000, 32_000
_handed_out: set[int] = set()


def _slice() -> range:
    # Each pytest-xdist worker picks from a slice of its own: two workers can never choose the
    # same port in the moment between choosing it and binding it.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    width = (_HIGH - _LOW) // max(count, 1)
    start = _LOW + (index % max(count, 1)) * width
    return range(start, start + width)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on at this moment, not handed out before by
    this process (two calls in a row give two ports even before either is bound)."""
    ports = _slice()
    for _ in range(500):
        port = random.choice(ports)
        if port in _handed_out:
            if len(_handed_out) >= len(ports) // 2:
                _handed_out.clear()  # long since closed; start over
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free loopback port in this worker's slice")
