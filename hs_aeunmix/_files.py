"""Writing files so that a failure never leaves a half-written or lost file.

Every file the package writes goes through :func:`atomic_path`: the content
is written to a temporary file in the target's folder, flushed to disk, and
only then renamed over the target (an atomic step on POSIX and Windows). A
write that fails midway (disk full, file-size limit, Ctrl-C) leaves the
previous file untouched, and a reader never sees a partial file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write to; it replaces ``path`` on success.

    The temporary file has the target's suffix (writers such as HyperSpy's
    ``save`` choose the format by suffix) and lives in the target's folder,
    so the final rename never crosses file systems. On an exception it is
    removed and ``path`` is left as it was.
    """
    target = Path(path)
    handle, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.stem}.", suffix=target.suffix
    )
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        _fsync(temporary)
        temporary.replace(target)
        _fsync_folder(target.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        stream.write(data)
    return Path(path)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as stream:
        os.fsync(stream.fileno())


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
