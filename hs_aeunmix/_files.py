"""Writing files so that a failure never leaves a half-written or lost file.

Every file the package writes goes through :func:`atomic_path`: the content
is written to a temporary file in the target's folder, flushed to disk, and
only then renamed over the target (an atomic step on POSIX and Windows). A
write that fails midway (disk full, file-size limit, Ctrl-C) leaves the
previous file untouched, and a reader never sees a partial file.

With ``overwrite=False`` the last step creates the target only if it does
not exist, atomically where the file system has hard links, so that two
programs writing into one folder cannot replace each other's results.

Temporary files are named ``.hs_aeunmix-<16 hex digits>.tmp<suffix>``: a
short name of fixed length, so that it fits wherever the target's name fits,
and a recognisable one, so that those a killed process left behind (power
cut, ``SIGKILL``) are removed at a later save into the same folder once they
are :data:`STALE_AFTER_SECONDS` old (a process looks through a folder at most
once in that time). No other file is ever removed.

This module imports nothing beyond the standard library: the command line
uses it before it loads any heavy dependency.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

# Permission bits of a new file before the umask, as ``open(path, "w")`` gives.
_NEW_FILE_MODE = 0o666
_TEMPORARY_PREFIX = ".hs_aeunmix-"
_TEMPORARY_TAG = ".tmp"
_TOKEN_BYTES = 8
# Exactly the names _temporary_name gives (with the target's suffix, a
# ``pathlib`` suffix, or none): nothing else is ever removed as a leftover.
_TEMPORARY_NAME = re.compile(
    re.escape(_TEMPORARY_PREFIX)
    + f"[0-9a-f]{{{2 * _TOKEN_BYTES}}}"
    + re.escape(_TEMPORARY_TAG)
    + r"(\.[^.]*)?"
)
# Where the file system does not say (Windows): NTFS's, ext4's, APFS's limit.
_DEFAULT_NAME_MAX = 255
#: Age (seconds since the last write) from which a temporary file of this
#: package is a leftover of a killed process: a writer still alive writes to
#: its file far more often than that.
STALE_AFTER_SECONDS = 3600.0
# Folders swept for leftovers, and when: once an hour per folder is enough,
# and a series writing thousands of files into one folder does not list it
# at every save.
_last_sweep: dict[str, float] = {}


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write to; it replaces ``path`` on success.

    The temporary file already exists (empty) when it is yielded, so the
    writer must be able to write over an existing file (HyperSpy's
    ``signal.save(temporary, overwrite=True)``, ``open(temporary, "wb")``,
    matplotlib's ``savefig``). It has the target's suffix, since writers
    such as HyperSpy's ``save`` choose the format by suffix, and lives in
    the target's folder, so the final rename never crosses file systems.
    Its name, ``.hs_aeunmix-<16 hex digits>.tmp<suffix>``, is short
    whatever the target's (the suffix is left out where it would not fit
    the file system's name limit), and recognisable: those left behind by a
    killed process are removed by a later call for the same folder once
    they are :data:`STALE_AFTER_SECONDS` old.

    The new file gets the permissions of the file it replaces, or those a
    newly created file gets (the umask applies), not the owner-only
    permissions of :func:`tempfile.mkstemp`.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write. Its folder must exist.
    overwrite : bool, default=True
        When False, an existing ``path`` is never replaced: the check is
        made before the writer runs (so a long write is not wasted) and
        again, atomically where the file system has hard links, when the
        file is put in place.

    Yields
    ------
    pathlib.Path
        The temporary file to write.

    Raises
    ------
    IsADirectoryError
        ``path`` is a folder.
    FileExistsError
        ``overwrite`` is False and ``path`` exists (before or after the
        writer ran); the temporary file is removed.
    OSError
        The temporary file cannot be created (missing or read-only folder).
        Every ``OSError`` that names the temporary file (the writer's too)
        is raised naming ``path`` instead.

    Notes
    -----
    Whatever the writer raises (including ``KeyboardInterrupt``) removes
    the temporary file and leaves ``path`` as it was. Only a process killed
    outright (power cut, ``SIGKILL``) can leave a temporary file behind,
    never a partial ``path``.

    Examples
    --------
    >>> with atomic_path("scan_ae.hspy") as temporary:  # doctest: +SKIP
    ...     signal.save(temporary, overwrite=True)
    """
    target = Path(path)
    _check_target(target, overwrite)
    _sweep_leftovers(target.parent)
    temporary = _create_temporary(target.parent, target.suffix, target)
    try:
        yield temporary
        _fsync(temporary)
        _copy_permissions(target, temporary)
        _publish(temporary, target, overwrite)
        _fsync_folder(target.parent)
    except BaseException as error:
        _discard(temporary)
        _blame_target(error, temporary, target)
        raise


def write_bytes_atomically(
    path: str | os.PathLike, data: bytes, *, overwrite: bool = True
) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    data : bytes
        Its new content.
    overwrite : bool, default=True
        Replace an existing file (else :class:`FileExistsError`).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    with (
        atomic_path(path, overwrite=overwrite) as temporary,
        open(temporary, "wb") as stream,
    ):
        stream.write(data)
    return Path(path)


def ensure_writable_folder(path: str | os.PathLike) -> Path:
    """Create the folder ``path`` if missing and check that files can be made in it.

    The check creates and removes a temporary file, the same way
    :func:`atomic_path` does, since permission bits alone do not tell
    (access control lists, read-only mounts, network shares).

    Parameters
    ----------
    path : str or os.PathLike
        The folder.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    NotADirectoryError
        ``path`` (or one of its parents) is a file.
    PermissionError
        Files cannot be created in ``path``.
    OSError
        Any other reason the folder cannot be created or written.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, "exists and is not a folder", str(folder)
        )
    folder.mkdir(parents=True, exist_ok=True)
    _create_temporary(folder, "", folder).unlink()
    return folder


def _check_target(target: Path, overwrite: bool) -> None:
    if target.is_dir():
        raise IsADirectoryError(
            errno.EISDIR, "is a folder; cannot write a file there", str(target)
        )
    if not overwrite and target.exists():
        raise FileExistsError(errno.EEXIST, "already exists", str(target))


def _create_temporary(folder: Path, suffix: str, blame: Path) -> Path:
    """An empty new file in ``folder``, created with the usual permissions.

    An error names ``blame`` (the file being written, or the folder being
    checked) rather than a temporary name the user never chose.
    """
    binary = getattr(os, "O_BINARY", 0)  # Windows
    for _ in range(100):
        temporary = folder / _temporary_name(folder, suffix)
        try:
            descriptor = os.open(
                temporary,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | binary,
                _NEW_FILE_MODE,
            )
        except FileExistsError:
            continue
        except OSError as error:
            _blame_target(error, temporary, blame)
            raise
        os.close(descriptor)
        return temporary
    raise FileExistsError(  # pragma: no cover (2**64 names, 100 tries)
        errno.EEXIST, "no free temporary file name", str(folder)
    )


def _temporary_name(folder: Path, suffix: str) -> str:
    """A fresh temporary file name for ``folder``, with ``suffix`` if it fits."""
    name = f"{_TEMPORARY_PREFIX}{secrets.token_hex(_TOKEN_BYTES)}{_TEMPORARY_TAG}"
    # The suffix matters to writers that choose the format by it (HyperSpy's
    # ``save``); a suffix too long to fit is no format's.
    if len(os.fsencode(name + suffix)) <= _name_max(folder):
        name += suffix
    return name


def _name_max(folder: Path) -> int:
    """The longest file name (in bytes) the file system of ``folder`` allows."""
    try:
        longest = os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows)
        return _DEFAULT_NAME_MAX
    return longest if longest > 0 else _DEFAULT_NAME_MAX  # -1: no limit given


def _blame_target(error: BaseException, temporary: Path, target: Path) -> None:
    """Make an error that names ``temporary`` name ``target``, in place.

    The user chose ``target``; a message about a hidden temporary file of
    another name sends them looking for a file that no longer exists.
    """
    if not isinstance(error, OSError):
        return
    if error.filename is not None and _same_path(error.filename, temporary):
        error.filename = str(target)
        if error.filename2 is not None and _same_path(error.filename2, target):
            error.filename2 = None
    elif error.filename2 is not None and _same_path(error.filename2, temporary):
        error.filename2 = str(target)


def _same_path(name, path: Path) -> bool:
    try:
        return Path(os.fsdecode(name)) == path
    except TypeError:  # a file descriptor
        return False


def _sweep_leftovers(folder: Path) -> None:
    """Remove this package's temporary files that killed processes left in ``folder``.

    Only regular files named as :func:`_temporary_name` names them, not
    written to for :data:`STALE_AFTER_SECONDS`, are removed: never a folder
    (a ``.zspy`` writer's folder does not show its progress in its own
    modification time) nor a link. Listing or removing fails silently: the
    save matters, the leftovers do not.
    """
    key = os.path.abspath(folder)
    now = time.time()
    if now - _last_sweep.get(key, -float("inf")) < STALE_AFTER_SECONDS:
        return
    _last_sweep[key] = now
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not _TEMPORARY_NAME.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):
                status = entry.stat(follow_symlinks=False)
                if (
                    stat.S_ISREG(status.st_mode)
                    and now - status.st_mtime > STALE_AFTER_SECONDS
                ):
                    os.unlink(entry.path)


def _copy_permissions(target: Path, temporary: Path) -> None:
    """Give ``temporary`` the permission bits of the file it will replace."""
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:  # no file to replace: the umask already applied
        return
    with contextlib.suppress(OSError):
        os.chmod(temporary, mode)


def _publish(temporary: Path, target: Path, overwrite: bool) -> None:
    """Put ``temporary`` in place of ``target`` in one atomic step."""
    if overwrite:
        os.replace(temporary, target)
        return
    try:
        # Creates ``target`` only if it does not exist, atomically.
        os.link(temporary, target)
    except FileExistsError:
        raise FileExistsError(
            errno.EEXIST, "was created by someone else meanwhile", str(target)
        ) from None
    except OSError:
        # No hard links (FAT, exFAT, some network shares): check, then
        # rename; another writer can only slip into this short window.
        if target.exists():
            raise FileExistsError(
                errno.EEXIST, "was created by someone else meanwhile", str(target)
            ) from None
        os.replace(temporary, target)
    else:
        temporary.unlink()


def _discard(temporary: Path) -> None:
    """Remove a temporary file (or the folder a writer made of it); never raises."""
    try:
        temporary.unlink(missing_ok=True)
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)


def _fsync(path: Path) -> None:
    """Flush ``path``'s content to disk (a disk-full error shows up here too)."""
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
