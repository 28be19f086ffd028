"""A connection (an HTTP client, an engine's pool) made on first use and shared between threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """Keeps what ``make`` returns on the first :meth:`get`, until :meth:`close` releases it.

    Connectors are shared between request threads, so making it is locked. After :meth:`close`
    the next :meth:`get` makes a new one.
    """

    def __init__(self, make: Callable[[], T], release: Callable[[T], None]) -> None:
        self._make = make
        self._release = release
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        """The current value, made now if there is none.

        Raises:
            Exception: whatever ``make`` raises; nothing is kept then.
        """
        with self._lock:
            if self._value is None:
                self._value = self._make()
            return self._value

    def close(self) -> None:
        """Release the current value, if any; released outside the lock."""
        with self._lock:
            value, self._value = self._value, None
        if value is not None:
            self._release(value)
