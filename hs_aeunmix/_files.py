"""Writing files so that a failure never leaves a half-written or lost file.

Every file the package writes goes through :func:`atomic_path`: the content
is written to a temporary file in the target's folder, flushed to disk, and
only then renamed over the target (an atomic step on POSIX and Windows). A
write that fails midway (disk full, file-size limit, Ctrl-C) leaves the
previous file untouched, and a reader never sees a partial file.

With ``overwrite=False`` the last step creates the target only if it does
not exist, atomically where the file system has hard links, so that two
programs writing into one folder cannot replace each other's results.

The files of one result (a scan's results file, figures and tables) are
written together with :func:`staged_files`: each to its temporary file, and
all renamed into place only once every one is written, so that a failure
(disk full, a killed dask worker) leaves none of them, and a second attempt
does not find a part of the first one's results in its way. Before writing,
:func:`check_free_space` refuses a write the disk has no room for: a full
disk met in the middle of an HDF5 write can crash the writer.

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


class StagedFiles:
    """Files written under temporary names, put in place together.

    Made by :func:`staged_files`, which renames every file :meth:`add` gave
    into place once the block that wrote them ends without error, and
    removes them all otherwise.
    """

    def __init__(self, overwrite: bool) -> None:
        self.overwrite = overwrite
        self._staged: list[tuple[Path, Path]] = []  # (target, temporary)

    @property
    def targets(self) -> list[Path]:
        """The files to be written, in the order they will be put in place."""
        return [target for target, _ in self._staged]

    def add(self, path: str | os.PathLike) -> Path:
        """A new temporary file to write; it will replace ``path``.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write. Its folder must exist.

        Returns
        -------
        pathlib.Path
            The temporary file (empty, beside ``path``, with its suffix).

        Raises
        ------
        IsADirectoryError
            ``path`` is a folder.
        FileExistsError
            ``overwrite`` is False and ``path`` exists.
        OSError
            The temporary file cannot be created (naming ``path``).
        """
        target = Path(path)
        _check_target(target, self.overwrite)
        _sweep_leftovers(target.parent)
        temporary = _create_temporary(target.parent, target.suffix, target)
        self._staged.append((target, temporary))
        return temporary

    def _publish(self) -> None:
        """Flush every temporary file, then rename each over its target, in order."""
        for target, temporary in self._staged:
            _fsync(temporary)
            _copy_permissions(target, temporary)
        if not self.overwrite:
            # Checked for all before any is put in place, so that a file
            # someone else made meanwhile does not leave a part of the group.
            for target, _ in self._staged:
                if os.path.lexists(target):
                    raise FileExistsError(
                        errno.EEXIST,
                        "was created by someone else meanwhile",
                        str(target),
                    )
        published: list[Path] = []
        try:
            for target, temporary in self._staged:
                _publish(temporary, target, self.overwrite)
                published.append(target)
        except BaseException:
            if not self.overwrite:
                # Without overwrite every published file is new and ours: take
                # them back, so that no part of the group is left.
                for target in published:
                    with contextlib.suppress(OSError):
                        target.unlink()
            raise
        for folder in dict.fromkeys(target.parent for target in published):
            _fsync_folder(folder)

    def _discard(self, error: BaseException) -> None:
        """Remove the temporary files; make ``error`` name a target, not one of them."""
        for target, temporary in self._staged:
            _discard(temporary)
            _blame_target(error, temporary, target)


@contextlib.contextmanager
def staged_files(*, overwrite: bool = True) -> Iterator[StagedFiles]:
    """Write several files, and put them in place together when all are written.

    Each file is written as :func:`atomic_path` writes one (a temporary file
    beside it, flushed, then renamed), but the renames wait until the block
    ends: an error in the block, or Ctrl-C, leaves none of the files, not
    the first few. A process killed outright leaves only hidden temporary
    files (removed later, see :func:`atomic_path`), unless it dies in the
    instant between two renames.

    Parameters
    ----------
    overwrite : bool, default=True
        When False, no existing file is replaced: each is checked when
        added and all again before the first rename; files already put in
        place are removed again when a later one fails. With ``True``, a
        rename that fails (the target became a folder) leaves the files
        renamed before it.

    Yields
    ------
    StagedFiles
        Its :meth:`~StagedFiles.add` gives the temporary file to write for
        a target.

    Raises
    ------
    FileExistsError
        ``overwrite`` is False and a target exists (when added, or before
        the renames).
    OSError
        As :func:`atomic_path`; an error that names a temporary file names
        its target instead.

    Examples
    --------
    >>> with staged_files(overwrite=False) as staged:  # doctest: +SKIP
    ...     signal.save(staged.add("scan_ae.hspy"), overwrite=True)
    ...     figure.savefig(staged.add("scan_abundances.png"))
    """
    staged = StagedFiles(overwrite)
    try:
        yield staged
        staged._publish()
    except BaseException as error:
        staged._discard(error)
        raise


def check_free_space(path: str | os.PathLike, needed: int) -> None:
    """Refuse to write about ``needed`` bytes to ``path`` when its disk lacks them.

    Parameters
    ----------
    path : str or os.PathLike
        The file to be written (its folder, or the nearest existing folder
        above it, tells the disk).
    needed : int
        The expected size of what will be written there, in bytes.

    Raises
    ------
    OSError
        With ``errno.ENOSPC``, naming ``path`` and both sizes, when the disk
        has fewer than ``needed`` bytes free. When the free space cannot be
        read, nothing is raised: the write itself will tell.
    """
    target = Path(path)
    try:
        free = shutil.disk_usage(_existing_folder(target.parent)).free
    except OSError:
        return
    if free < needed:
        raise OSError(
            errno.ENOSPC,
            f"not enough free space to write it: about {_size(needed)} needed, "
            f"{_size(free)} free on its disk; free some space or choose another "
            "output folder",
            str(target),
        )


def longest_name(folder: str | os.PathLike) -> int:
    """The longest file name (in bytes) allowed in ``folder``, which need not exist.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder (its nearest existing folder tells the file system).

    Returns
    -------
    int
        The limit the file system gives, else 255.
    """
    return _name_max(_existing_folder(Path(folder)))


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
    with staged_files(overwrite=overwrite) as staged:
        yield staged.add(path)


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
    if folder.is_symlink() and not folder.exists():
        raise FileNotFoundError(
            errno.ENOENT,
            "is a broken symbolic link; remove it or choose another output folder",
            str(folder),
        )
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


def _existing_folder(folder: Path) -> Path:
    """``folder``, or the nearest folder above it that exists."""
    folder = Path(os.path.abspath(folder))
    while not folder.is_dir() and folder.parent != folder:
        folder = folder.parent
    return folder


def _size(count: int) -> str:
    """A number of bytes as people read it: ``"1.5 GB"``."""
    value = float(count)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            break
        value /= 1000
    return f"{count} bytes" if unit == "bytes" else f"{value:.3g} {unit}"


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
