"""Which files of a watched folder are scans, and when one is finished.

The file side of :func:`hs_aeunmix._watch.watch_folder`: which names are
candidate scan files (:func:`_patterns`, :func:`readable_extensions`,
:func:`is_temporary_name`), and, through :class:`_Folder`, which of them
are finished.

When a scan is finished
    Its size and modification time (its :func:`_signature`) have not
    changed for ``settle`` seconds, seen by two looks at the folder at least
    that far apart (a file modification time alone is not trusted: a
    network share's clock may be off), it is not empty, and it can be
    opened for reading (:func:`_can_open`). On Windows the file is opened
    exclusively, which fails while the acquisition software still holds it
    open; on POSIX opening never fails for that reason, and the stable size
    and time decide. Files whose names start with ``.`` or ``~`` or end
    with ``.tmp`` or ``.part`` (temporary files of writers, and this
    package's own) are never looked at, nor files whose extension no
    HyperSpy reader knows, nor subfolders (``.zspy`` stores included).
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from hs_aeunmix import _jobs

_logger = logging.getLogger(__name__)

_TEMPORARY_PREFIXES = (".", "~")
_TEMPORARY_SUFFIXES = (".tmp", ".part")

_Signature = tuple[int, int]  # (size in bytes, modification time in ns)


def _patterns(pattern: str | Sequence[str]) -> tuple[str, ...]:
    """The patterns, each checked against the extensions HyperSpy reads."""
    patterns = (pattern,) if isinstance(pattern, str) else tuple(pattern)
    if not patterns:
        raise ValueError("give at least one file name pattern")
    known = readable_extensions()
    for text in patterns:
        suffix = text.rsplit(".", 1)[-1] if "." in text else ""
        if (
            suffix
            and not any(char in suffix for char in "*?[")
            and (suffix.casefold() not in known)
        ):
            raise ValueError(
                f"pattern {text!r}: HyperSpy reads no '.{suffix}' files (it reads "
                + ", ".join(f".{extension}" for extension in sorted(known))
                + ")"
            )
    return patterns


def readable_extensions() -> frozenset[str]:
    """The file extensions (lower case, no dot) of HyperSpy's readers."""
    from rsciio import IO_PLUGINS

    return frozenset(
        extension.casefold()
        for plugin in IO_PLUGINS
        for extension in plugin["file_extensions"]
    )


class _Folder:
    """A watched folder: the files in it that may be scans, and which settled.

    A file has settled once two looks at least ``settle`` seconds apart saw
    the same signature, it is not empty, and :func:`_can_open` opens it.
    """

    def __init__(self, path: Path, patterns: Sequence[str], settle: float) -> None:
        self.path = path
        self.patterns = tuple(text.casefold() for text in patterns)
        self.extensions = readable_extensions()
        self.settle = settle
        # Files seen but not yet finished: their signature and since when
        # (time.monotonic()) it has not changed.
        self.pending: dict[Path, tuple[_Signature, float]] = {}
        self._listing_failed = False

    def look(self) -> dict[Path, _Signature]:
        """The files that may be scans, with their signatures; forget the others.

        Empty (warned once) while the folder cannot be listed.
        """
        try:
            found = _list_candidates(self.path, self.patterns, self.extensions)
        except OSError as error:  # a network share gone for a while
            if not self._listing_failed:
                _logger.warning(
                    "cannot look into %s (%s); trying again", self.path, error
                )
            self._listing_failed = True
            found = {}
        else:
            self._listing_failed = False
        for path in list(self.pending):
            if path not in found:  # removed or renamed away
                del self.pending[path]
        return found

    def forget(self, path: Path) -> None:
        """Forget that ``path`` was seen (it is handled, or to settle again)."""
        self.pending.pop(path, None)

    def settled(self, path: Path, signature: _Signature, now: float) -> bool:
        """Whether ``path``, seen at ``now`` (time.monotonic()), has settled."""
        previous = self.pending.get(path)
        if previous is None or previous[0] != signature:
            self.pending[path] = (signature, now)
            return False
        if signature[0] == 0:  # created, not yet written
            return False
        return now - previous[1] >= self.settle and _can_open(path)


def _list_candidates(
    folder: Path, patterns: Sequence[str], extensions: frozenset[str]
) -> dict[Path, _Signature]:
    """The files of ``folder`` that may be scans, with their signatures.

    ``patterns`` are case-folded. Raises OSError if the folder cannot be
    listed; a file that goes away meanwhile is left out.
    """
    found: dict[Path, _Signature] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if not _wanted(entry.name, patterns, extensions):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file():
                    status = entry.stat()
                    found[Path(entry.path)] = (
                        status.st_size,
                        status.st_mtime_ns,
                    )
    return found


def _wanted(name: str, patterns: Sequence[str], extensions: frozenset[str]) -> bool:
    if is_temporary_name(name):
        return False
    folded = name.casefold()
    extension = folded.rsplit(".", 1)[-1] if "." in folded else ""
    return extension in extensions and any(
        fnmatch.fnmatchcase(folded, text) for text in patterns
    )


def is_temporary_name(name: str) -> bool:
    """Whether a file name is a writer's temporary or hidden file, never unmixed."""
    folded = name.casefold()
    return folded.startswith(_TEMPORARY_PREFIXES) or folded.endswith(
        _TEMPORARY_SUFFIXES
    )


def _can_open(path: Path) -> bool:
    """Whether ``path`` can be opened for reading now (exclusively on Windows)."""
    try:
        _open_for_reading(path)
    except OSError as error:
        _logger.debug("%s cannot be opened yet: %s", path, error)
        return False
    return True


def _open_for_reading(path: Path) -> None:
    """Open ``path`` and close it; raise OSError if it cannot be opened.

    On Windows the file is opened with no sharing, which fails while
    another process (the acquisition software still writing it) holds it
    open. Elsewhere a plain open, which succeeds even then.
    """
    if os.name == "nt":  # pragma: no cover (tested on Windows only)
        _open_exclusively_on_windows(path)
        return
    with open(path, "rb"):
        pass


def _open_exclusively_on_windows(path: Path) -> None:  # pragma: no cover
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    create = kernel32.CreateFileW
    create.restype = wintypes.HANDLE
    create.argtypes = [
        wintypes.LPCWSTR,
        wintypes.DWORD,
        wintypes.DWORD,
        wintypes.LPVOID,
        wintypes.DWORD,
        wintypes.DWORD,
        wintypes.HANDLE,
    ]
    generic_read, no_sharing, open_existing, normal = 0x80000000, 0, 3, 0x80
    handle = create(
        str(path), generic_read, no_sharing, None, open_existing, normal, None
    )
    if handle is None or handle == wintypes.HANDLE(-1).value:
        error = ctypes.get_last_error()
        raise OSError(None, ctypes.FormatError(error), str(path), error)
    kernel32.CloseHandle(handle)


def _signature(path: Path) -> _Signature | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns


def _same_folder(first: Path, second: Path) -> bool:
    if _jobs.same_file(first, second):
        return True
    return first.resolve() == second.resolve()


def _remove_written(before: dict[Path, _Signature | None]) -> None:
    """Remove the outputs written (created or replaced) since ``before``."""
    for path, signature in before.items():
        if _signature(path) != signature:
            with contextlib.suppress(OSError):
                path.unlink()
