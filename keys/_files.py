"""Writing secret-bearing files safely."""

from __future__ import annotations

import contextlib
import os
import tempfile
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


def _fsync_dir(directory: Path) -> None:
    # Persist the new directory entry so a crash cannot lose a key that was already handed out.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
