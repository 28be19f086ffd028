"""A thread that owns one thread-bound object and runs calls on it, one at a time.

The embedded Rego engine (regorus) is bound to the thread that created it: using it from any
other thread raises a Rust panic, and even dropping it on another thread reports an error. So
the engine is created, used and dropped on this one thread, and it is only ever a local
variable of the thread's function: no other object holds it, so no other thread can end up
dropping it.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

R = TypeVar("R")
V = TypeVar("V")


class WorkerCallFailed(Exception):
    """A call on the owned object raised; carries only the exception's type name.

    The original exception is not passed across: its traceback would keep the owned object
    alive in another thread, and its message may quote the input.
    """

    def __init__(self, type_name: str) -> None:
        super().__init__(type_name)
        self.type_name = type_name


class WorkerClosed(Exception):
    """The worker was closed, or its thread has ended."""


_Job = tuple[Callable[[Any], Any], "Future[Any]"]


def _serve(
    factory: Callable[[], Any], jobs: queue.SimpleQueue[_Job | None], ready: Future[None]
) -> None:
    try:
        owned = factory()
    except BaseException as exc:
        ready.set_exception(WorkerCallFailed(type(exc).__name__))
        return
    ready.set_result(None)
    while True:
        job = jobs.get()
        if job is None:
            break
        call, future = job
        if not future.set_running_or_notify_cancel():
            continue
        try:
            result = call(owned)
        except (KeyboardInterrupt, SystemExit) as exc:
            # Hand these on as fresh instances so the caller can re-raise them.
            future.set_exception(type(exc)(*exc.args))
        except BaseException as exc:
            # PanicException from the Rust engine is a BaseException, not an Exception.
            future.set_exception(WorkerCallFailed(type(exc).__name__))
        else:
            future.set_result(result)
    # `owned` goes out of scope here, on the thread that made it.


class OwnerThread(Generic[R]):
    """Runs ``factory()`` on a new daemon thread, then each submitted call on its result.

    Calls run in the order submitted. ``close()`` lets the calls already queued finish, then
    ends the thread; a worker that is garbage-collected without ``close()`` ends the same way.
    """

    def __init__(self, factory: Callable[[], R], *, name: str, start_timeout: float) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        ready: Future[None] = Future()
        # The thread is given the queue and the factory, never `self`, so a forgotten worker
        # can still be collected and its finaliser can stop the thread.
        self._thread = threading.Thread(
            target=_serve, args=(factory, self._jobs, ready), name=name, daemon=True
        )
        self._thread.start()
        self._finalizer = weakref.finalize(self, self._jobs.put, None)
        try:
            ready.result(timeout=start_timeout)
        except BaseException:
            self.close(timeout=0)
            raise

    def submit(self, call: Callable[[R], V]) -> Future[V]:
        """Queue ``call(owned)`` on the owner thread.

        Raises:
            WorkerClosed: the worker was closed or its thread has ended.
        """
        future: Future[V] = Future()
        with self._lock:
            if self._closed or not self._thread.is_alive():
                raise WorkerClosed("the worker is closed")
            self._jobs.put((call, future))
        return future

    def close(self, *, timeout: float) -> None:
        """Stop taking calls, let queued ones finish and wait up to ``timeout`` for the end."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._finalizer()
        self._thread.join(timeout)
