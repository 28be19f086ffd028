"""One thread-bound object per thread: made, used and dropped only on that thread.

The embedded Rego engine's objects (regorus) are bound to the thread that created them: using
one from any other thread raises a Rust panic, and dropping one on another thread reports an
error and leaks it. Handing every call to one owner thread would keep to that, but on a small
machine the two thread wake-ups per call cost more than a whole evaluation. So a
:class:`ThreadBound` keeps one object per calling thread instead:

- it is made on the calling thread the first time that thread calls, and used only there;
- it lives in a module-level ``threading.local``, which is never collected, so CPython drops a
  thread's objects only when that thread ends, on that thread;
- after ``close()`` (or once the ThreadBound is garbage-collected) every call is refused, and
  each thread drops its now useless object the next time it makes a new one, again on itself.

No object is ever handed to another thread, and a failure is passed on only as the name of
its type: the original exception's traceback would keep the object alive beyond its thread's
control, and its message may quote the input.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

T = TypeVar("T")
V = TypeVar("V")
P = ParamSpec("P")

_slots = threading.local()
_keys = itertools.count()


class ThreadBoundFailed(Exception):
    """Making or using the calling thread's object raised, or the ThreadBound is closed.

    Carries only the exception's type name (``closed`` is True for a closed ThreadBound).
    """

    def __init__(self, type_name: str, *, closed: bool = False) -> None:
        super().__init__(type_name)
        self.type_name = type_name
        self.closed = closed


class _State:
    """Whether a ThreadBound still takes calls; shared with its per-thread objects."""

    __slots__ = ("closed",)

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def _thread_objects() -> dict[int, tuple[_State, Any]]:
    objects: dict[int, tuple[_State, Any]] | None = getattr(_slots, "objects", None)
    if objects is None:
        objects = {}
        _slots.objects = objects
    return objects


def _drop_closed(objects: dict[int, tuple[_State, Any]]) -> None:
    # Runs on the thread that owns `objects`, so dropping them here is safe.
    for key in [key for key, (state, _owned) in objects.items() if state.closed]:
        del objects[key]


class ThreadBound(Generic[T]):
    """Runs calls on the calling thread's own object, made by ``factory()`` on first use."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._key = next(_keys)
        self._state = _State()
        # A forgotten ThreadBound closes itself, so threads can drop its objects. The
        # per-thread entries hold the state, never `self`, so it can be collected.
        weakref.finalize(self, self._state.close)

    def call(self, fn: Callable[..., V], *args: Any) -> V:
        """``fn(object, *args)`` on the calling thread's object.

        Raises:
            ThreadBoundFailed: closed, or making the object or the call raised.
        """
        if self._state.closed:
            raise ThreadBoundFailed("closed", closed=True)
        objects = _thread_objects()
        entry = objects.get(self._key)
        failure: str | None = None
        if entry is None:
            _drop_closed(objects)
            try:
                owned = self._factory()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                # PanicException from the Rust engine is a BaseException, not an Exception.
                failure = type(exc).__name__
            else:
                entry = (self._state, owned)
                objects[self._key] = entry
            if failure is not None:
                # Raised outside the except block, so no traceback refers to the object.
                raise ThreadBoundFailed(failure)
            assert entry is not None
        try:
            return fn(entry[1], *args)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            failure = type(exc).__name__
        raise ThreadBoundFailed(failure)

    def owned_here(self) -> bool:
        """Whether the calling thread holds an object of this ThreadBound (for tests)."""
        return self._key in _thread_objects()

    def close(self) -> None:
        """Refuse further calls; drop this thread's object now and the others' later."""
        self._state.close()
        _drop_closed(_thread_objects())
