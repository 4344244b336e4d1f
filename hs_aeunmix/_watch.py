"""Unmix each scan that appears in a folder, once it is written: ``hs-aeunmix watch``.

On a microscope PC the acquisition software writes scan after scan into one
folder. :func:`watch_folder` looks at that folder every ``interval`` seconds
and unmixes each new scan with a trained model, exactly as ``hs-aeunmix
apply MODEL SCAN -o OUTPUT`` does (:func:`hs_aeunmix._series.unmix_scan`
with the jobs of :func:`hs_aeunmix._jobs.plan_jobs`): same files, same
names, same atomic writes.

Training on the first scans (``series=N``)
    Without a model, the watch waits for the first ``N`` finished scans,
    trains one model on them jointly (:func:`hs_aeunmix.decompose_series`:
    shared endmembers, each scan its own offset and intensity), saves it
    as :data:`SERIES_MODEL_NAME` in the output folder, writes those scans'
    results as ``hs-aeunmix train --series`` does, and unmixes every later
    scan with that model. A scan that cannot be read (or is not a spectrum
    image, or has other axis units than the first) is recorded failed and
    the series waits for another one. The ledger records the training (the
    model file's SHA-256, ``N``, the number of endmembers, the scans): a
    restart applies the recorded model and trains nothing again. Ctrl-C
    during training abandons it (nothing written, nothing recorded).

When a scan is finished
    Its size and modification time have not changed for ``settle`` seconds
    and it can be opened for reading; temporary files, names of other
    extensions and subfolders are never looked at
    (:mod:`hs_aeunmix._watch_files`).

Never twice
    A ledger in the output folder, :data:`LEDGER_NAME`, records every file
    handled and its outcome, so a restart skips what is recorded unchanged
    and unmixes again a file that changed (:mod:`hs_aeunmix._watch_ledger`).

Stopping
    Ctrl-C (``KeyboardInterrupt``), ``stop.set()`` from another thread,
    ``once`` or ``max_files``. A scan interrupted midway is abandoned: the
    files it had already written are removed, so the output folder never
    holds an incomplete set of results, and the scan is not recorded, so
    the next run unmixes it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hs_aeunmix import _jobs, _joint, _series
from hs_aeunmix._constraints import check_count
from hs_aeunmix._files import ensure_writable_folder
from hs_aeunmix._watch_files import (
    _Folder,
    _patterns,
    _remove_written,
    _same_folder,
    _Signature,
    _signature,
)
from hs_aeunmix._watch_ledger import (
    LEDGER_NAME,
    Ledger,
    _key,
    _recorded_series_model,
    _SeriesPlan,
)

_logger = logging.getLogger(__name__)

#: Name of the model a watch with ``series`` trains, in the output folder.
SERIES_MODEL_NAME = "series.aeunmix"
DEFAULT_PATTERN = "*.hspy"
DEFAULT_INTERVAL = 1.0
DEFAULT_SETTLE = 2.0
# The longest a sleep goes without looking at ``stop`` (seconds).
_WAIT_STEP = 0.1

DONE, FAILED, SKIPPED = "done", "failed", "skipped"


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
        Time spent unmixing (loading and writing excluded); for a scan the
        series was trained on, the joint training and unmixing of them all.
    series : bool
        Whether the scan is one of the first files the series' model was
        trained on (``series=N``).
    """

    source: Path
    outcome: str
    size: int
    mtime_ns: int
    message: str
    written: tuple[Path, ...] = ()
    seconds: float = 0.0
    series: bool = False


@dataclass(frozen=True)
class SeriesTrained:
    """The model of a watch with ``series``, once it is in hand.

    Attributes
    ----------
    model : pathlib.Path
        The model file, :data:`SERIES_MODEL_NAME` in the output folder.
    sources : tuple of pathlib.Path
        The scans it was trained on.
    fit : hs_aeunmix.SeriesFit or None
        The joint fit (its ``str()`` is the table of offsets and intensity
        ratios); None when an earlier run trained the model (recorded in
        the ledger) and this one only applies it.
    seconds : float
        Time spent training and unmixing the series (0 when reused).
    """

    model: Path
    sources: tuple[Path, ...]
    fit: object | None = None
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
    series_waiting : int
        With ``series``: how many more finished scans the training still
        waited for when the run ended (0 once the model is trained).
    """

    done: list[Path] = field(default_factory=list)
    failed: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    interrupted: bool = False
    ledger: Path | None = None
    series_waiting: int = 0

    def line(self) -> str:
        """``"n done, n failed, n skipped"``, and whether Ctrl-C stopped the run."""
        text = (
            f"{len(self.done)} done, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped"
        )
        if self.series_waiting:
            plural = "s" if self.series_waiting > 1 else ""
            text += (
                f"; the series waits for {self.series_waiting} more "
                f"file{plural} to train on"
            )
        return text + (" (stopped by Ctrl-C)" if self.interrupted else "")


def watch_folder(
    folder: str | os.PathLike,
    model=None,
    output: str | os.PathLike = "hs_aeunmix_results",
    *,
    series: int | None = None,
    n_components: int | None = None,
    training_options: Mapping | None = None,
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
    on_series: Callable[[SeriesTrained], None] | None = None,
) -> WatchSummary:
    """Unmix every scan that appears in ``folder`` once it is written, never twice.

    Each finished scan (its size and modification time unchanged for
    ``settle`` seconds and the file readable; see :mod:`hs_aeunmix._watch_files`)
    is unmixed with ``model`` and its results written to ``output`` as
    ``hs-aeunmix apply`` writes them (``scan_ae.hspy``, the figures, the
    endmember table and the uncertainty maps). A ledger in ``output``
    (:data:`LEDGER_NAME`) records each file handled, so that no file is
    unmixed twice, also across restarts, and a file that changed is
    unmixed again. A file that fails (unreadable, half-written, an axis the
    model cannot map) is reported, recorded and retried only once it
    changes; the watch goes on.

    With ``series=N`` instead of ``model``, the first ``N`` finished scans
    train one model jointly (:func:`hs_aeunmix.decompose_series`), saved as
    :data:`SERIES_MODEL_NAME` in ``output``; their results are written and
    every later scan is unmixed with that model. A restart whose ledger
    records the training applies the saved model (nothing is trained again).

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to watch (not its subfolders). It must exist.
    model : str, os.PathLike, AEUnmix or HyperSpy signal, optional
        A model file, a results file or signal unmixed with ``"ae"``, or a
        fitted model. Loaded once, before the watch starts. Give exactly
        one of ``model`` and ``series``.
    output : str or os.PathLike, default="hs_aeunmix_results"
        The output folder (created when missing); it must not be ``folder``.
    series : int, optional
        Train the model on the first ``series`` finished scans, jointly,
        and then apply it. A scan that cannot be read is recorded failed
        and the series waits for another.
    n_components : int, optional
        Number of endmembers of the series' model (required with
        ``series``, refused with ``model``).
    training_options : mapping, optional
        Options of the series' training, as for
        ``s.decomposition(algorithm="ae", ...)`` (``max_epochs``,
        ``preset``, ``random_state``, ...); ``device`` defaults to
        ``device``. Only with ``series``.
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
    on_series : callable, optional
        With ``series``: called with a :class:`SeriesTrained` once the
        model is in hand (trained by this run, or by an earlier one and
        recorded in the ledger), before the results of its scans are
        reported. Default: logged.

    Returns
    -------
    WatchSummary
        The files done, failed and skipped by this run. Ctrl-C
        (``KeyboardInterrupt``) ends the run cleanly: the current scan (or
        the series' training) is abandoned (its files removed) and the
        summary is returned with ``interrupted=True``.

    Raises
    ------
    ValueError
        ``folder`` is not a folder, ``output`` is ``folder``, an option is
        out of range, not exactly one of ``model`` and ``series`` is given,
        a pattern names an extension HyperSpy cannot read, the ledger
        cannot be read, the model file is not a model
        (:class:`hs_aeunmix.ModelFileError`), or, with ``series``, the
        output folder holds a :data:`SERIES_MODEL_NAME` that the ledger
        does not record as this watch's (unless ``overwrite``), or one
        trained with another ``series`` or ``n_components``.
    TypeError
        An unknown training option.
    FileNotFoundError
        No model file.
    RuntimeError
        The series' training failed (the watch stops; nothing of the
        series is written).
    OSError
        The output folder cannot be created or written.

    Examples
    --------
    >>> summary = watch_folder("D:/scans", "first.aeunmix", "D:/maps")  # doctest: +SKIP
    >>> print(summary.line())  # doctest: +SKIP
    12 done, 1 failed, 0 skipped (stopped by Ctrl-C)
    >>> summary = watch_folder(
    ...     "D:/scans", output="D:/maps", series=3, n_components=4
    ... )  # doctest: +SKIP
    """
    from hs_aeunmix._estimator import load_model

    folder = Path(folder)
    output = Path(output)
    patterns = _patterns(pattern)
    _check_options(interval, settle, max_files)
    plan = _series_plan(
        model,
        series,
        n_components,
        training_options,
        output / SERIES_MODEL_NAME,
        device,
    )
    if not folder.is_dir():
        raise ValueError(f"no folder to watch at {folder}")
    if _same_folder(folder, output):
        raise ValueError(
            f"the output folder {output} is the watched folder: results would "
            "be taken for new scans. Choose another -o folder."
        )
    ledger = Ledger.read(output / LEDGER_NAME)
    if plan is None:
        protected = _series._files_read(model)
        # Read and checked once, here: a bad model file stops the watch at once.
        model_bytes = _series.model_file_bytes(load_model(model, device=device))
    else:
        protected = [plan.model]
        # None: to be trained on the first files.
        model_bytes = _recorded_series_model(plan, ledger.series, overwrite, device)
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
        ledger=ledger,
        series=plan,
        on_series=on_series or _log_series,
    )
    summary = watcher.summary
    looks = 0
    try:
        if plan is not None and model_bytes is not None:
            watcher.on_series(
                SeriesTrained(
                    plan.model,
                    tuple(Path(key) for key in ledger.series.get("files", ())),
                )
            )
        while not _is_set(stop):
            looks += 1
            for path, signature in watcher.finished():
                if _is_set(stop):
                    break
                watcher.handle(path, signature)
                if max_files is not None and watcher.processed >= max_files:
                    return summary
            if once and (looks >= 2 or not watcher.folder.pending):
                break
            _wait(settle if once else interval, stop)
    except KeyboardInterrupt:
        summary.interrupted = True
        _logger.info("stopped by Ctrl-C")
    finally:
        watcher.close()
        watcher.ledger.save()
    return summary


# ------------------------------------------------------------------ checks
def _check_options(interval: float, settle: float, max_files: int | None) -> None:
    if not (math.isfinite(interval) and interval > 0):
        raise ValueError(f"interval={interval!r} must be a positive number of seconds")
    if not (math.isfinite(settle) and settle >= 0):
        raise ValueError(f"settle={settle!r} must be a number of seconds, 0 or more")
    if max_files is not None:
        check_count("max_files", max_files, "watch")


def _series_plan(
    model, series, n_components, training_options, path: Path, device: str
) -> _SeriesPlan | None:
    """The series to train (None with ``model``), its arguments checked."""
    if (model is None) == (series is None):
        raise ValueError(
            "give exactly one of model (a trained model to apply) and series "
            "(train one on the first N files, then apply it)"
        )
    if series is None:
        if n_components is not None:
            raise ValueError(
                "n_components is for series=N; the model has its own endmembers"
            )
        if training_options:
            raise ValueError(
                "training_options are for series=N; the model is applied as it is"
            )
        return None
    for name, value in (("series", series), ("n_components", n_components)):
        if value is None:
            raise ValueError(
                "series=N needs n_components, the number of endmembers of the "
                "model to train"
            )
        check_count(name, value, "watch")
    if training_options is not None and not isinstance(training_options, Mapping):
        raise ValueError(
            f"training_options must be a mapping of options, got {training_options!r}"
        )
    options = {"device": device, **(training_options or {})}
    from hs_aeunmix._options import make_estimator

    # Unknown options and presets are refused now, not when the files are in.
    make_estimator("ae", int(n_components), options)
    return _SeriesPlan(int(series), int(n_components), options, path)


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


def _log_result(result: WatchResult) -> None:
    """The default ``on_result``: one log line per file."""
    if result.outcome == FAILED:
        _logger.warning("%s", result.message)
    elif result.outcome == DONE and result.series:
        _logger.info(
            "%s: trained on with the series, wrote %s",
            result.message,
            ", ".join(map(str, result.written)),
        )
    elif result.outcome == DONE:
        _logger.info(
            "%s: unmixed in %.3f s, wrote %s",
            result.message,
            result.seconds,
            ", ".join(map(str, result.written)),
        )
    else:
        _logger.info("%s", result.message)


def _log_series(trained: SeriesTrained) -> None:
    """The default ``on_series``: what was trained, or that it is reused."""
    if trained.fit is None:
        _logger.info("applying %s, trained by an earlier run", trained.model)
    else:
        _logger.info(
            "trained %s on %d scans in %.2f s:\n%s",
            trained.model,
            len(trained.sources),
            trained.seconds,
            trained.fit,
        )


# ----------------------------------------------------------------- watching
@dataclass
class _Collected:
    """A finished scan that waits, loaded, for the series to be trained on."""

    signature: _Signature
    job: _jobs.Job
    overwrite: bool
    signal: object
    units: str | None


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
        model_bytes: bytes | None,
        lazy: bool,
        device: str,
        on_result: Callable[[WatchResult], None],
        ledger: Ledger,
        series: _SeriesPlan | None = None,
        on_series: Callable[[SeriesTrained], None] = _log_series,
    ) -> None:
        self.folder = _Folder(folder, patterns, settle)
        self.output = output
        self.overwrite = overwrite
        self.model_bytes = model_bytes
        self.lazy = lazy
        self.device = device
        self.on_result = on_result
        # The files handled, and the series' training once recorded.
        self.ledger = ledger
        self.series = series
        self.on_series = on_series
        # With series and no model yet: the finished scans it will train on.
        self.collected: dict[Path, _Collected] = {}
        self.protected = [*protected, ledger.path]
        self.summary = WatchSummary(ledger=ledger.path)
        self.processed = 0
        self._reported_skips: set[str] = set()

    # -------------------------------------------------------------- looking
    def finished(self) -> list[tuple[Path, _Signature]]:
        """Look at the folder; the files finished since, oldest first."""
        now = time.monotonic()
        candidates = self.folder.look()
        for path in list(self.collected):
            if path not in candidates:
                self._drop(path)
        ready = []
        for path, signature in candidates.items():
            if self._in_ledger(path, signature):
                self.folder.forget(path)
                continue
            held = self.collected.get(path)
            if held is not None:
                if held.signature == signature:
                    continue  # waits for the series
                self._drop(path)  # changed: to settle again
            if any(_jobs.same_file(path, other) for other in self.protected):
                continue  # the model itself, a results file in the folder
            if self.folder.settled(path, signature, now):
                ready.append((path, signature))
        ready.sort(key=lambda item: (item[1][1], item[0].name))
        return ready

    def _in_ledger(self, path: Path, signature: _Signature) -> bool:
        """Whether the ledger records ``path`` as it is now (skipped, then)."""
        key = _key(path)
        entry = self.ledger.files.get(key)
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
        """Unmix one finished file (or skip it), record it, report it.

        While a series waits for its files, the file joins it instead (and
        the series is trained once it has them all).
        """
        self.folder.forget(path)
        if _signature(path) != signature:  # changed since the last look
            return
        planned = self._plan(path, signature)
        if planned is None:
            return
        job, overwrite = planned
        if self.model_bytes is None:
            self._collect(path, signature, job, overwrite)
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

    def _plan(self, path: Path, signature: _Signature) -> tuple[_jobs.Job, bool] | None:
        """The job of a file and whether it may overwrite; None if recorded instead.

        A file whose outputs would replace an input or another file's
        results is recorded failed; one whose results the output folder
        already holds (not this watch's) is recorded skipped, unless
        ``overwrite``.
        """
        entry = self.ledger.files.get(_key(path))
        # Results this watch wrote for an earlier version of the file are
        # its own to replace.
        own = entry is not None and entry.get("outcome") == DONE
        overwrite = self.overwrite or own
        try:
            [job] = _jobs.plan_jobs(
                [path],
                self.output,
                with_model=False,
                other_inputs=self.protected,
                overwrite=True,  # existing results are judged below
            )
            self._check_owner(job, path)
        except _jobs.Refusal as refusal:
            self._record(path, signature, FAILED, f"{path}: {refusal}")
            return None
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
            return None
        return job, overwrite

    def _check_owner(self, job: _jobs.Job, path: Path) -> None:
        """Refuse results that another file of the same name wrote (or will)."""
        key = _key(path)
        stem = job.stem.casefold()
        for other, entry in self.ledger.files.items():
            if (
                other != key
                and entry.get("outcome") == DONE
                and str(entry.get("stem", "")).casefold() == stem
            ):
                raise _jobs.Refusal(
                    f"{other} already wrote {job.results.name} in {self.output}: "
                    "results are named after their input's file name; rename one"
                )
        for other, held in self.collected.items():
            if other != path and held.job.stem.casefold() == stem:
                raise _jobs.Refusal(
                    f"{other}, of the series, will write {job.results.name} in "
                    f"{self.output}: results are named after their input's file "
                    "name; rename one"
                )

    # --------------------------------------------------------------- series
    def _collect(
        self, path: Path, signature: _Signature, job: _jobs.Job, overwrite: bool
    ) -> None:
        """Load a finished file for the series; train once it has them all.

        A file that cannot be read, is not a spectrum image or has other
        axis units than the series' first is recorded failed (the series
        waits for another).
        """
        from hs_aeunmix._axes import SignalCalibration
        from hs_aeunmix._options import check_signal

        signal = None
        try:
            signal = _jobs.load_single_signal(path, lazy=self.lazy)
            check_signal(signal, reapplying=False)
            units = SignalCalibration.from_signal(signal).units
            for other, held in self.collected.items():
                if held.units != units:
                    raise ValueError(
                        f"its spectral axis is in {units!r}, that of {other.name}, "
                        f"first of the series, in {held.units!r}; it cannot be "
                        "trained on with it"
                    )
                break
        except Exception as error:  # reported and recorded: the series waits
            _jobs.close_signal(signal)
            message = _jobs.one_line(error)
            if str(path) not in message:
                message = f"{path}: {message}"
            self._record(path, signature, FAILED, message)
            return
        except BaseException:
            _jobs.close_signal(signal)
            raise
        self.collected[path] = _Collected(signature, job, overwrite, signal, units)
        if len(self.collected) >= self.series.n_files:
            self._train_series()

    def _drop(self, path: Path) -> None:
        """Forget a file the series waited with (it changed or went away)."""
        held = self.collected.pop(path, None)
        if held is not None:
            _jobs.close_signal(held.signal)

    def close(self) -> None:
        """Release the files the series waited with; count those still missing."""
        if self.series is not None and self.model_bytes is None:
            self.summary.series_waiting = self.series.n_files - len(self.collected)
        for path in list(self.collected):
            self._drop(path)

    def _train_series(self) -> None:
        """Train the series' model on the collected files; write and record all.

        Nothing is recorded unless every file was written: an error or
        Ctrl-C removes what was written (and ends the watch).
        """
        changed = [
            path
            for path, held in self.collected.items()
            if _signature(path) != held.signature
        ]
        for path in changed:  # written again meanwhile: seen as it settles
            self._drop(path)
        if changed:
            return
        plan = self.series
        items = list(self.collected.items())
        before = {
            output: _signature(output)
            for _, held in items
            for output in held.job.outputs
        }
        before[plan.model] = _signature(plan.model)
        try:
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    # Ctrl-C abandons the training: no "best weights kept".
                    warnings.filterwarnings(
                        "ignore", "Training interrupted", UserWarning
                    )
                    fit = _joint.decompose_series(
                        [held.signal for _, held in items],
                        plan.n_components,
                        **plan.options,
                    )
            except Exception as error:
                names = ", ".join(path.name for path, _ in items)
                raise RuntimeError(
                    f"training the series' model on {names} failed: "
                    f"{_jobs.one_line(error)}"
                ) from error
            history = getattr(fit.model, "history_", None)
            if getattr(history, "interrupted", False):
                raise KeyboardInterrupt
            seconds = time.perf_counter() - start
            written = [
                _jobs.write_results(scan.signal, held.job, overwrite=held.overwrite)
                for scan, (_, held) in zip(fit.scans, items, strict=True)
            ]
            _jobs.write_file(plan.model, self.overwrite, fit.model.save)
            self.model_bytes = plan.model.read_bytes()
        except BaseException:  # Ctrl-C too: no series half written
            _remove_written(before)
            self.model_bytes = None
            raise
        finally:
            for path, _ in items:
                self._drop(path)
        self.ledger.enter_series(
            plan.model,
            self.model_bytes,
            plan.n_files,
            plan.n_components,
            [path for path, _ in items],
        )
        results = [
            self._enter(
                path,
                held.signature,
                DONE,
                _jobs.describe_signal(scan.signal, held.job.stem),
                written=files,
                seconds=seconds,
                series=True,
            )
            for (path, held), scan, files in zip(items, fit.scans, written, strict=True)
        ]
        self.ledger.save()  # the series and its files at once
        self.on_series(
            SeriesTrained(plan.model, tuple(path for path, _ in items), fit, seconds)
        )
        for result in results:
            self.on_result(result)

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
        result = self._enter(
            path, signature, outcome, message, written=written, seconds=seconds
        )
        self.ledger.save()
        self.on_result(result)

    def _enter(
        self,
        path: Path,
        signature: _Signature,
        outcome: str,
        message: str,
        *,
        written: Sequence[Path] = (),
        seconds: float = 0.0,
        series: bool = False,
    ) -> WatchResult:
        """Enter a file in the ledger (not yet saved) and the summary."""
        self.ledger.enter(
            path, signature, outcome, message, written=written, series=series
        )
        # A later look at the unchanged file is not another skip.
        self._reported_skips.add(_key(path))
        {DONE: self.summary.done, FAILED: self.summary.failed}.get(
            outcome, self.summary.skipped
        ).append(path)
        if outcome != SKIPPED:
            self.processed += 1
        size, mtime_ns = signature
        return WatchResult(
            path, outcome, size, mtime_ns, message, tuple(written), seconds, series
        )
