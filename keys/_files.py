"""Writing secret-bearing files safely."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def write_new_private_file(path: Path, data: bytes) -> None:
    """Atomically create `path` with mode 0o600 holding `data`; never replace an existing file.

    Missing parent directories are created (the last one with mode 0o700).
    Raises FileExistsError if `path` already exists, and OSError on any other I/O failure.
    """
    path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    # mkstemp creates the file 0o600 from the start, so the secret is never briefly world-readable.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE_FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # A hard link publishes the complete file in one step and, unlike rename, fails
        # rather than replacing a file another process created in the meantime.
        os.link(tmp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    _fsync_dir(path.parent)


def replace_private_file(path: Path, data: bytes) -> None:
    """Atomically replace the existing file at `path` with one of mode 0o600 holding `data`.

    Readers see either the old file or the new one, never a mix. Raises FileNotFoundError if
    `path` does not exist, and OSError on any other I/O failure.
    """
    if not path.exists():
        raise FileNotFoundError(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE_FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    _fsync_dir(path.parent)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on the existing file at `path` for the block.

    Processes that read, change and replace the file under this lock never lose each other's
    changes, provided each re-reads `path` after taking the lock. Raises OSError if `path`
    cannot be opened.
    """
    with path.open("rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _fsync_dir(directory: Path) -> None:
    # Persist the new directory entry so a crash cannot lose a key that was already handed out.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
