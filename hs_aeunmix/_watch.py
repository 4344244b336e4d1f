"""Unmix each scan that appears in a folder, once it is written: ``hs-aeunmix watch``.

On a microscope PC the acquisition software writes scan after scan into one
folder. :func:`watch_folder` looks at that folder every ``interval`` seconds
and unmixes each new scan with a trained model, exactly as ``hs-aeunmix
apply MODEL SCAN -o OUTPUT`` does (:func:`hs_aeunmix._series.unmix_scan`
with the jobs of :func:`hs_aeunmix._cli.plan_jobs`): same files, same
names, same atomic writes.

When a scan is finished
    Its size and modification time have not changed for ``settle`` seconds,
    seen by two looks at the folder at least that far apart (a file
    modification time alone is not trusted: a network share's clock may be
    off), it is not empty, and it can be opened for reading. On Windows the
    file is opened exclusively, which fails while the acquisition software
    still holds it open; on POSIX opening never fails for that reason, and
    the stable size and time decide. Files whose names start with ``.`` or
    ``~`` or end with ``.tmp`` or ``.part`` (temporary files of writers, and
    this package's own) are never looked at, nor files whose extension no
    HyperSpy reader knows, nor subfolders (``.zspy`` stores included).

Never twice
    A ledger in the output folder, :data:`LEDGER_NAME`, records every file
    handled: its resolved path, size, modification time (ns) and outcome
    (``done``, ``failed`` with the error, or ``skipped`` when the output
    folder already held results of that name). It is written atomically
    after every file, so a restart skips what is recorded with the same
    size and time; a file that changed since is unmixed again (replacing
    its own earlier results, which the ledger proves are this watch's). A
    failed file is retried only once it changes; a skipped one also by a
    run with ``overwrite``.

Stopping
    Ctrl-C (``KeyboardInterrupt``), ``stop.set()`` from another thread,
    ``once`` or ``max_files``. A scan interrupted midway is abandoned: the
    files it had already written are removed, so the output folder never
    holds an incomplete set of results, and the scan is not recorded, so
    the next run unmixes it.
"""

from __future__ import annotations

import contextlib
import datetime
import fnmatch
import functools
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hs_aeunmix import _cli, _series
from hs_aeunmix._files import ensure_writable_folder, write_bytes_atomically

_logger = logging.getLogger(__name__)

#: Name of the ledger file in the output folder.
LEDGER_NAME = ".hs_aeunmix_watch.json"
DEFAULT_PATTERN = "*.hspy"
DEFAULT_INTERVAL = 1.0
DEFAULT_SETTLE = 2.0
_LEDGER_FORMAT = "hs-aeunmix watch ledger"
_LEDGER_VERSION = 1
_TEMPORARY_PREFIXES = (".", "~")
_TEMPORARY_SUFFIXES = (".tmp", ".part")
# The longest a sleep goes without looking at ``stop`` (seconds).
_WAIT_STEP = 0.1

DONE, FAILED, SKIPPED = "done", "failed", "skipped"
_Signature = tuple[int, int]  # (size in bytes, modification time in ns)


@dataclass(frozen=True)
class WatchResult:
    """What happened to one file that :func:`watch_folder` acted on.

    Attributes
    ----------
    source : pathlib.Path
        The file, in the watched folder.
    outcome : {"done", "failed", "skipped"}
        Unmixed and its results written; failed (nothing written for it);
        or left alone because the output folder already held its results.
    size : int
        The file's size in bytes when it was unmixed (as recorded).
    mtime_ns : int
        Its modification time (ns) then.
    message : str
        One line: the scan's description when done, else the reason.
    written : tuple of pathlib.Path
        The files written (empty unless done).
    seconds : float
        Time spent unmixing (loading and writing excluded).
    """

    source: Path
    outcome: str
    size: int
    mtime_ns: int
    message: str
    written: tuple[Path, ...] = ()
    seconds: float = 0.0


@dataclass
class WatchSummary:
    """What a :func:`watch_folder` run did.

    Attributes
    ----------
    done : list of pathlib.Path
        Files unmixed by this run, in order.
    failed : list of pathlib.Path
        Files that failed in this run (recorded, retried once they change).
    skipped : list of pathlib.Path
        Files left alone: recorded by an earlier run with the same size and
        modification time, or whose results the output folder already held.
    interrupted : bool
        Whether Ctrl-C (``KeyboardInterrupt``) ended the run.
    ledger : pathlib.Path or None
        The ledger file.
    """

    done: list[Path] = field(default_factory=list)
    failed: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    interrupted: bool = False
    ledger: Path | None = None

    def line(self) -> str:
        """``"n done, n failed, n skipped"``, and whether Ctrl-C stopped the run."""
        text = (
            f"{len(self.done)} done, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped"
        )
        return text + (" (stopped by Ctrl-C)" if self.interrupted else "")


def watch_folder(
    folder: str | os.PathLike,
    model,
    output: str | os.PathLike = "hs_aeunmix_results",
    *,
    pattern: str | Sequence[str] = DEFAULT_PATTERN,
    interval: float = DEFAULT_INTERVAL,
    settle: float = DEFAULT_SETTLE,
    overwrite: bool = False,
    once: bool = False,
    max_files: int | None = None,
    stop: threading.Event | None = None,
    on_result: Callable[[WatchResult], None] | None = None,
    lazy: bool = False,
    device: str = "auto",
) -> WatchSummary:
    """Unmix every scan that appears in ``folder`` once it is written, never twice.

    Each finished scan (its size and modification time unchanged for
    ``settle`` seconds and the file readable; see :mod:`hs_aeunmix._watch`)
    is unmixed with ``model`` and its results written to ``output`` as
    ``hs-aeunmix apply`` writes them (``scan_ae.hspy``, the figures, the
    endmember table and the uncertainty maps). A ledger in ``output``
    (:data:`LEDGER_NAME`) records each file handled, so that no file is
    unmixed twice, also across restarts, and a file that changed is
    unmixed again. A file that fails (unreadable, half-written, an axis the
    model cannot map) is reported, recorded and retried only once it
    changes; the watch goes on.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to watch (not its subfolders). It must exist.
    model : str, os.PathLike, AEUnmix or HyperSpy signal
        A model file, a results file or signal unmixed with ``"ae"``, or a
        fitted model. Loaded once, before the watch starts.
    output : str or os.PathLike, default="hs_aeunmix_results"
        The output folder (created when missing); it must not be ``folder``.
    pattern : str or sequence of str, default="*.hspy"
        Glob pattern(s) of the file names to unmix, matched regardless of
        case; of those, only files with an extension HyperSpy reads.
    interval : float, default=1.0
        Seconds between looks at the folder.
    settle : float, default=2.0
        Seconds a file's size and modification time must stay unchanged
        before it counts as written.
    overwrite : bool, default=False
        Replace results in ``output`` that this watch did not write (a
        changed file's own earlier results are always replaced). Without
        it such a file is skipped and recorded as ``skipped``.
    once : bool, default=False
        Look at the folder twice, ``settle`` seconds apart, unmix what is
        finished, and return (for cron jobs and scripts).
    max_files : int, optional
        Return once this many files were unmixed or failed.
    stop : threading.Event, optional
        Set it (from another thread) to return after the current file.
    on_result : callable, optional
        Called with a :class:`WatchResult` for every file unmixed, failed
        or skipped for existing results, once the ledger records it.
        Default: each is logged (failures as warnings).
    lazy : bool, default=False
        Load each scan lazily and unmix it chunk by chunk (scans larger
        than memory).
    device : {"auto", "cpu", "cuda", "mps"}, default="auto"
        Where the model runs.

    Returns
    -------
    WatchSummary
        The files done, failed and skipped by this run. Ctrl-C
        (``KeyboardInterrupt``) ends the run cleanly: the current scan is
        abandoned (its files removed) and the summary is returned with
        ``interrupted=True``.

    Raises
    ------
    ValueError
        ``folder`` is not a folder, ``output`` is ``folder``, an option is
        out of range, a pattern names an extension HyperSpy cannot read,
        the ledger cannot be read, or the model file is not a model
        (:class:`hs_aeunmix.ModelFileError`).
    FileNotFoundError
        No model file.
    OSError
        The output folder cannot be created or written.

    Examples
    --------
    >>> summary = watch_folder("D:/scans", "first.aeunmix", "D:/maps")  # doctest: +SKIP
    >>> print(summary.line())  # doctest: +SKIP
    12 done, 1 failed, 0 skipped (stopped by Ctrl-C)
    """
    from hs_aeunmix._estimator import load_model

    folder = Path(folder)
    output = Path(output)
    patterns = _patterns(pattern)
    _check_options(interval, settle, max_files)
    if not folder.is_dir():
        raise ValueError(f"no folder to watch at {folder}")
    if _same_folder(folder, output):
        raise ValueError(
            f"the output folder {output} is the watched folder: results would "
            "be taken for new scans. Choose another -o folder."
        )
    protected = _series._files_read(model)
    # Read and checked once, here: a bad model file stops the watch at once.
    model_bytes = _series.model_file_bytes(load_model(model, device=device))
    ensure_writable_folder(output)
    watcher = _Watcher(
        folder=folder,
        output=output,
        patterns=patterns,
        settle=settle,
        overwrite=overwrite,
        protected=protected,
        model_bytes=model_bytes,
        lazy=lazy,
        device=device,
        on_result=on_result or _log_result,
    )
    summary = watcher.summary
    looks = 0
    try:
        while not _is_set(stop):
            looks += 1
            for path, signature in watcher.finished():
                if _is_set(stop):
                    break
                watcher.handle(path, signature)
                if max_files is not None and watcher.processed >= max_files:
                    return summary
            if once and (looks >= 2 or not watcher.pending):
                break
            _wait(settle if once else interval, stop)
    except KeyboardInterrupt:
        summary.interrupted = True
        _logger.info("stopped by Ctrl-C")
    finally:
        watcher.save_ledger()
    return summary


# ------------------------------------------------------------------ checks
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


def _check_options(interval: float, settle: float, max_files: int | None) -> None:
    if not (math.isfinite(interval) and interval > 0):
        raise ValueError(f"interval={interval!r} must be a positive number of seconds")
    if not (math.isfinite(settle) and settle >= 0):
        raise ValueError(f"settle={settle!r} must be a number of seconds, 0 or more")
    if max_files is not None and max_files < 1:
        raise ValueError(f"max_files={max_files!r} must be at least 1")


def _same_folder(first: Path, second: Path) -> bool:
    if _cli._same_file(first, second):
        return True
    return first.resolve() == second.resolve()


def _is_set(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def _wait(seconds: float, stop: threading.Event | None) -> None:
    """Sleep ``seconds``, in short steps so that ``stop`` and Ctrl-C stop it soon."""
    deadline = time.monotonic() + seconds
    while not _is_set(stop):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(remaining, _WAIT_STEP))


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


def _log_result(result: WatchResult) -> None:
    """The default ``on_result``: one log line per file."""
    if result.outcome == FAILED:
        _logger.warning("%s", result.message)
    elif result.outcome == DONE:
        _logger.info(
            "%s: unmixed in %.3f s, wrote %s",
            result.message,
            result.seconds,
            ", ".join(map(str, result.written)),
        )
    else:
        _logger.info("%s", result.message)


# ----------------------------------------------------------------- watching
class _Watcher:
    """The state of a watch: files seen, their stability, and the ledger."""

    def __init__(
        self,
        *,
        folder: Path,
        output: Path,
        patterns: tuple[str, ...],
        settle: float,
        overwrite: bool,
        protected: Iterable[Path],
        model_bytes: bytes,
        lazy: bool,
        device: str,
        on_result: Callable[[WatchResult], None],
    ) -> None:
        self.folder = folder
        self.output = output
        self.patterns = tuple(text.casefold() for text in patterns)
        self.extensions = readable_extensions()
        self.settle = settle
        self.overwrite = overwrite
        self.model_bytes = model_bytes
        self.lazy = lazy
        self.device = device
        self.on_result = on_result
        self.ledger_path = output / LEDGER_NAME
        self.ledger = _read_ledger(self.ledger_path)
        self.protected = [*protected, self.ledger_path]
        # Files seen but not yet finished: their signature and since when
        # (time.monotonic()) it has not changed.
        self.pending: dict[Path, tuple[_Signature, float]] = {}
        self.summary = WatchSummary(ledger=self.ledger_path)
        self.processed = 0
        self._reported_skips: set[str] = set()
        self._listing_failed = False

    # -------------------------------------------------------------- looking
    def _candidates(self) -> dict[Path, _Signature]:
        """The files of the folder that may be scans, with their signatures."""
        found: dict[Path, _Signature] = {}
        try:
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    if not self._wanted(entry.name):
                        continue
                    with contextlib.suppress(OSError):
                        if entry.is_file():
                            status = entry.stat()
                            found[Path(entry.path)] = (
                                status.st_size,
                                status.st_mtime_ns,
                            )
        except OSError as error:  # a network share gone for a while
            if not self._listing_failed:
                _logger.warning(
                    "cannot look into %s (%s); trying again", self.folder, error
                )
            self._listing_failed = True
            return {}
        self._listing_failed = False
        return found

    def _wanted(self, name: str) -> bool:
        if is_temporary_name(name):
            return False
        folded = name.casefold()
        extension = folded.rsplit(".", 1)[-1] if "." in folded else ""
        return extension in self.extensions and any(
            fnmatch.fnmatchcase(folded, text) for text in self.patterns
        )

    def finished(self) -> list[tuple[Path, _Signature]]:
        """Look at the folder; the files finished since, oldest first."""
        now = time.monotonic()
        candidates = self._candidates()
        for path in list(self.pending):
            if path not in candidates:  # removed or renamed away
                del self.pending[path]
        ready = []
        for path, signature in candidates.items():
            if self._in_ledger(path, signature):
                self.pending.pop(path, None)
                continue
            if any(_cli._same_file(path, other) for other in self.protected):
                continue  # the model itself, a results file in the folder
            previous = self.pending.get(path)
            if previous is None or previous[0] != signature:
                self.pending[path] = (signature, now)
                continue
            if signature[0] == 0:  # created, not yet written
                continue
            if now - previous[1] >= self.settle and _can_open(path):
                ready.append((path, signature))
        ready.sort(key=lambda item: (item[1][1], item[0].name))
        return ready

    def _in_ledger(self, path: Path, signature: _Signature) -> bool:
        """Whether the ledger records ``path`` as it is now (skipped, then)."""
        key = _key(path)
        entry = self.ledger.get(key)
        if entry is None or (entry.get("size"), entry.get("mtime_ns")) != signature:
            return False
        if entry.get("outcome") == SKIPPED and self.overwrite:
            return False  # skipped for existing results, which may now be replaced
        if key not in self._reported_skips:
            self._reported_skips.add(key)
            self.summary.skipped.append(path)
            _logger.debug("%s: %s in %s", path, entry.get("outcome"), LEDGER_NAME)
        return True

    # ------------------------------------------------------------- handling
    def handle(self, path: Path, signature: _Signature) -> None:
        """Unmix one finished file (or skip it), record it, report it."""
        self.pending.pop(path, None)
        if _signature(path) != signature:  # changed since the last look
            return
        entry = self.ledger.get(_key(path))
        # Results this watch wrote for an earlier version of the file are
        # its own to replace.
        own = entry is not None and entry.get("outcome") == DONE
        overwrite = self.overwrite or own
        try:
            [job] = _cli.plan_jobs(
                [path],
                self.output,
                with_model=False,
                other_inputs=self.protected,
                overwrite=True,  # existing results are judged below
            )
            self._check_owner(job, path)
        except _cli.Refusal as refusal:
            self._record(path, signature, FAILED, f"{path}: {refusal}")
            return
        existing = [output for output in job.outputs if output.exists()]
        if existing and not overwrite:
            names = ", ".join(output.name for output in existing[:3])
            more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
            self._record(
                path,
                signature,
                SKIPPED,
                f"{path}: skipped, {self.output} already holds its results "
                f"({names}{more}); --overwrite replaces them",
            )
            return
        before = {output: _signature(output) for output in job.outputs}
        try:
            report = _series.unmix_scan(
                self.model_bytes,
                job,
                lazy=self.lazy,
                overwrite=overwrite,
                device=self.device,
            )
        except BaseException:  # Ctrl-C: abandon the scan, leave no partial set
            _remove_written(before)
            raise
        if report.failed:
            _remove_written(before)
            self._record(path, signature, FAILED, report.summary)
            return
        self._record(
            path,
            signature,
            DONE,
            report.summary,
            written=report.written,
            seconds=report.seconds,
        )

    def _check_owner(self, job: _cli.Job, path: Path) -> None:
        """Refuse results that another recorded file of the same name wrote."""
        key = _key(path)
        stem = job.stem.casefold()
        for other, entry in self.ledger.items():
            if (
                other != key
                and entry.get("outcome") == DONE
                and str(entry.get("stem", "")).casefold() == stem
            ):
                raise _cli.Refusal(
                    f"{other} already wrote {job.results.name} in {self.output}: "
                    "results are named after their input's file name; rename one"
                )

    def _record(
        self,
        path: Path,
        signature: _Signature,
        outcome: str,
        message: str,
        *,
        written: Sequence[Path] = (),
        seconds: float = 0.0,
    ) -> None:
        size, mtime_ns = signature
        self.ledger[_key(path)] = {
            "size": size,
            "mtime_ns": mtime_ns,
            "outcome": outcome,
            "message": message,
            "stem": path.stem,
            "written": [output.name for output in written],
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
        }
        self.save_ledger()
        # A later look at the unchanged file is not another skip.
        self._reported_skips.add(_key(path))
        {DONE: self.summary.done, FAILED: self.summary.failed}.get(
            outcome, self.summary.skipped
        ).append(path)
        if outcome != SKIPPED:
            self.processed += 1
        self.on_result(
            WatchResult(path, outcome, size, mtime_ns, message, tuple(written), seconds)
        )

    def save_ledger(self) -> None:
        """Write the ledger atomically (a reader never sees half of it)."""
        data = {
            "format": _LEDGER_FORMAT,
            "version": _LEDGER_VERSION,
            "files": self.ledger,
        }
        write_bytes_atomically(
            self.ledger_path, json.dumps(data, indent=1).encode("utf-8")
        )


@functools.lru_cache(maxsize=65536)
def _key(path: Path) -> str:
    """A file's entry in the ledger: its resolved path (asked at every look)."""
    return str(path.resolve())


def _remove_written(before: dict[Path, _Signature | None]) -> None:
    """Remove the outputs written (created or replaced) since ``before``."""
    for path, signature in before.items():
        if _signature(path) != signature:
            with contextlib.suppress(OSError):
                path.unlink()


def _read_ledger(path: Path) -> dict[str, dict]:
    """The entries of the ledger at ``path`` (none if it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
        if data.get("format") != _LEDGER_FORMAT:
            raise ValueError("not a ledger")
        if data.get("version") != _LEDGER_VERSION:
            raise ValueError(f"ledger version {data.get('version')!r}")
        files = data["files"]
        if not isinstance(files, dict) or not all(
            isinstance(entry, dict) for entry in files.values()
        ):
            raise ValueError("malformed entries")
    except (ValueError, KeyError, AttributeError) as error:
        raise ValueError(
            f"{path} is not a ledger of hs-aeunmix watch ({error}); move it away "
            "to start afresh (results already in the folder are then skipped)"
        ) from None
    return files
