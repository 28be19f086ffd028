"""Starting, watching and stopping the processes a benchmark run needs (Linux, loopback)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

PYTHON = sys.executable
HUB_BIN = str(Path(sys.executable).parent / "hub")
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback port nothing listens on at this moment."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(url: str, *, process: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    """Return once ``url`` answers (any status); raise if the process dies or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0, trust_env=False)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


@contextmanager
def running(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    ready_url: str | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` in its own process group for the ``with`` block, its output in ``log``.

    The group gets ``stop_signal`` at the end (SIGINT lets a profiler write what it sampled).
    """
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and scripts)
            list(args),
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        if ready_url is not None:
            wait_for(ready_url, process=process)
        yield process
    finally:
        _stop(process, stop_signal)


def _stop(process: subprocess.Popen[bytes], stop_signal: signal.Signals) -> None:
    if process.poll() is not None:
        return
    # The group: uvicorn's worker processes go with their supervisor.
    os.killpg(process.pid, stop_signal)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; the fields after it do not.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM) in MB, or None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def worker_peak_rss_mb(server_pid: int) -> float | None:
    """The largest peak resident set among a server's request-serving processes.

    With one worker uvicorn serves in the process itself; with more, in child processes (its
    supervisor and multiprocessing's small helper processes are left out by taking the largest).
    """
    pids = descendants(server_pid) or [server_pid]
    peaks = [p for p in (peak_rss_mb(pid) for pid in pids) if p is not None]
    return max(peaks) if peaks else None


def _busy_and_total() -> tuple[int, int]:
    """The machine's CPU time so far in clock ticks: (not idle, all), from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and waiting for I/O
    return sum(fields) - idle, sum(fields)


def settle(*, postgres_url: str | None, idle_share: float = 0.9, timeout: float = 30.0) -> float:
    """Wait until the machine is quiet; return the seconds waited.

    A stage that wrote a million rows leaves work behind (PostgreSQL's checkpoint and
    autovacuum, a dropped database's files) that would otherwise be measured as part of the
    next stage. A checkpoint is asked for first, then the CPUs are sampled every half second
    until one sample is at least ``idle_share`` idle, or ``timeout`` passes.
    """
    started = time.monotonic()
    if postgres_url is not None:
        from sqlalchemy import create_engine, text

        engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text("CHECKPOINT"))
        finally:
            engine.dispose()
    busy, total = _busy_and_total()
    while time.monotonic() - started < timeout:
        time.sleep(0.5)
        now_busy, now_total = _busy_and_total()
        if now_total > total and (now_busy - busy) / (now_total - total) <= 1 - idle_share:
            break
        busy, total = now_busy, now_total
    return time.monotonic() - started
