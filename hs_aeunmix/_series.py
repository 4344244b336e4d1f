"""A series of scans unmixed with one model: here, or on a dask cluster.

A facility's day of data is tens to hundreds of scans unmixed with the model
trained on the first. :func:`unmix_series` runs one task per scan: in this
process, one after the other, or on a ``dask.distributed`` cluster, where
each worker loads its scan (lazily when asked), unmixes it and writes its
results itself, so that a worker holds one scan at a time and only small
reports travel back (a worker reads its scan whole: memory holds one
scan per worker thread). The model travels as the bytes of its file (a few
hundred kilobytes), never pickled. :func:`apply_series` is the Python entry
point; ``hs-aeunmix apply --workers N`` / ``--scheduler ADDRESS`` the
command line's.

A scan that fails never stops the series: its error becomes its report,
also when the cluster gives it up because the workers that ran it died
(``KilledWorker``, after the scheduler's own retries). A scan's files are
put in place together once all are written, so that a failed attempt
leaves none of them and a later attempt (the scheduler's retry, or a run
with ``skip_existing``) starts from a clean slate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hs_aeunmix import _jobs
from hs_aeunmix._files import ensure_writable_folder

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanReport:
    """What happened to one scan of a series.

    Attributes
    ----------
    source : pathlib.Path
        The scan's file.
    written : tuple of pathlib.Path
        The files written (results, endmember and abundance figures); empty
        when the scan failed.
    seconds : float
        Time spent unmixing (loading and writing excluded).
    summary : str
        One line describing the scan, or the error message when it failed,
        or why it was skipped.
    failed : bool
        Whether the scan failed (nothing was written for it).
    skipped : bool
        Whether the scan was left alone because the output folder already
        held all its results (``skip_existing``).
    """

    source: Path
    written: tuple[Path, ...]
    seconds: float
    summary: str
    failed: bool = False
    skipped: bool = False


def unmix_scan(
    model_bytes: bytes,
    job: _jobs.Job,
    *,
    lazy: bool,
    overwrite: bool,
    device: str = "auto",
    on_worker: bool = False,
    show_progressbar: bool = True,
) -> ScanReport:
    """Load ``job.source``, unmix it with the model, write its files.

    Runs where it is called: in this process or, ``on_worker``, on a
    cluster's worker. Any error becomes a failed report, so that one bad
    scan never stops a series. HyperSpy's progress bars are hidden unless
    ``show_progressbar``.
    """
    from hs_aeunmix._estimator import load_model
    from hs_aeunmix._hyperspy_internals import progressbars_shown

    signal = None
    # On a worker a scan is read whole: dask inside a task would send the
    # scan's chunks to the cluster's scheduler, which cannot ship an open
    # HDF5 file between processes. Memory holds one scan per worker thread.
    lazy = lazy and not on_worker
    try:
        with progressbars_shown(show_progressbar):
            model = load_model(model_bytes, device=device)
            signal = _jobs.load_single_signal(job.source, lazy=lazy)
            start = time.perf_counter()
            signal.decomposition(algorithm="ae", model=model, print_info=False)
            seconds = time.perf_counter() - start
            written = _jobs.write_results(signal, job, overwrite=overwrite)
            summary = _jobs.describe_signal(signal, job.stem)
    except Exception as error:  # reported, never raised: the series goes on
        message = _jobs.one_line(error)
        if str(job.source) not in message:
            message = f"{job.source}: {message}"
        if lazy and isinstance(error, NotImplementedError):
            message += " (load the scan whole: without lazy / --lazy)"
        return ScanReport(job.source, (), 0.0, message, failed=True)
    finally:
        _jobs.close_signal(signal)
    return ScanReport(job.source, tuple(written), seconds, summary)


def unmix_series(
    model_bytes: bytes,
    jobs: Sequence[_jobs.Job],
    *,
    lazy: bool,
    overwrite: bool,
    device: str = "auto",
    client=None,
    show_progressbar: bool = True,
) -> Iterator[ScanReport]:
    """Reports of every job, as the scans finish.

    Without ``client`` the scans are unmixed here, in order; with a
    ``dask.distributed.Client`` they are submitted all at once and each
    report is yielded as its scan finishes (in any order). A job marked
    ``skip`` is reported skipped at once. A task the cluster gives up (its
    workers died, the connection was lost) is reported failed, naming its
    scan; the other scans go on.
    """
    options = {
        "lazy": lazy,
        "overwrite": overwrite,
        "device": device,
        "show_progressbar": show_progressbar,
    }
    for job in jobs:
        if job.skip:
            yield _skipped_report(job)
    jobs = [job for job in jobs if not job.skip]
    if client is None:
        for job in jobs:
            yield unmix_scan(model_bytes, job, **options)
        return
    try:
        from distributed import as_completed
    except ImportError:
        raise ImportError(
            "A series on a cluster needs dask.distributed: "
            'pip install "hs-aeunmix[cluster]"'
        ) from None

    # The bytes are sent to the workers once, not with every task.
    [shared_bytes] = client.scatter([model_bytes], broadcast=True)
    futures = {
        client.submit(
            unmix_scan, shared_bytes, job, **options, on_worker=True, pure=False
        ): job
        for job in jobs
    }
    for future in as_completed(futures):
        try:
            report = future.result()
        except Exception as error:  # the task, not the scan, failed
            report = _lost_report(futures[future], error)
        yield report


def _skipped_report(job: _jobs.Job) -> ScanReport:
    return ScanReport(
        job.source,
        (),
        0.0,
        f"{job.source}: skipped, {job.results.parent} already holds its results",
        skipped=True,
    )


def _lost_report(job: _jobs.Job, error: Exception) -> ScanReport:
    """The report of a scan whose task the cluster gave up."""
    if type(error).__name__ == "KilledWorker":
        # The scheduler has already run it again on other workers (its
        # ``allowed-failures``), and each died: the scan itself is likely
        # the cause (more memory than a worker has), so it is not resubmitted.
        message = (
            f"{job.source}: the dask workers that unmixed it died before it was "
            "done, and the cluster gave it up (KilledWorker); nothing was "
            "written for it. Unmix it again alone, or on workers with more memory"
        )
    else:
        message = f"{job.source}: its dask task failed: {_jobs.one_line(error)}"
    return ScanReport(job.source, (), 0.0, message, failed=True)


def model_file_bytes(model) -> bytes:
    """The bytes of ``model``'s file (``model``: AEUnmix, path or results signal)."""
    from hs_aeunmix._estimator import AEUnmix
    from hs_aeunmix._model_sources import read_source

    if isinstance(model, AEUnmix):
        if not hasattr(model, "module_"):
            raise ValueError(
                "This AEUnmix is not fitted. Train it first, or pass a model file."
            )
        return model._model_bytes()
    return read_source(model)[0]


def _files_read(model) -> list[Path]:
    """The file ``model`` is read from: its path, or the file a signal was loaded from.

    No output may replace it (the model would be lost, and a lazy signal
    reads from it).
    """
    if isinstance(model, (str, Path)):
        return [Path(model)]
    parameters = getattr(model, "tmp_parameters", None)
    if parameters is not None and parameters.has_item("filename"):
        name = f"{parameters.filename}{parameters.get_item('extension', '')}"
        return [Path(parameters.folder) / name]
    return []


def apply_series(
    model,
    files: Sequence,
    output="hs_aeunmix_results",
    *,
    client=None,
    lazy: bool = True,
    overwrite: bool = False,
    skip_existing: bool = False,
    device: str = "auto",
    show_progressbar: bool | None = None,
) -> list[ScanReport]:
    """Unmix many scans with one model and write each one's results.

    For every ``scan.<ext>`` the output folder receives ``scan_ae.hspy``
    (the signal with its decomposition, which carries the model),
    ``scan_endmembers.png`` and ``scan_abundances.png``, as ``hs-aeunmix
    apply`` writes them. Every output is checked before any scan is read: no
    input is ever replaced, two scans of the same file name are refused,
    and earlier results are kept unless ``overwrite``. A scan's files are
    written together (none is left when one fails) after a check that the
    disk has room for them.

    Parameters
    ----------
    model : AEUnmix, path or HyperSpy signal
        A fitted model, a model file, or a results file or signal unmixed
        with ``"ae"``.
    files : sequence of str or pathlib.Path
        The scans (any format HyperSpy reads).
    output : str or pathlib.Path, default="hs_aeunmix_results"
        The output folder (created when missing).
    client : dask.distributed.Client, optional
        Unmix the scans in parallel on this client's cluster, for example
        ``Client(LocalCluster(n_workers=4, threads_per_worker=1))``; each
        worker holds one scan at a time and writes its results itself (the
        workers must see ``files`` and ``output`` under the same paths).
        Default: one scan after the other in this process.
    lazy : bool, default=True
        Without ``client``: load each scan lazily and unmix it chunk by
        chunk, so that memory holds a few chunks, not the scan. On a
        cluster each worker reads its scan whole (one scan per worker
        thread in memory).
    overwrite : bool, default=False
        Replace earlier results in ``output``.
    skip_existing : bool, default=False
        Leave the scans whose results ``output`` already holds (all their
        files) and unmix the others: resumes a series that was interrupted.
        Their reports have ``skipped=True``. Ignored with ``overwrite``.
    device : {"auto", "cpu", "cuda", "mps"}, default="auto"
        Where the model runs (on each worker, with a client).
    show_progressbar : bool, optional
        Progress bars (over the scans, and HyperSpy's while a scan is read,
        unmixed and saved); default: HyperSpy's preference.

    Returns
    -------
    list of ScanReport
        One per scan, in the order of ``files``. A scan that fails (an
        unreadable file, an axis the model cannot map, a full disk, a
        cluster worker that died) has ``failed=True`` and its error as
        ``summary``, and none of its files is written; the others are
        still unmixed.

    Raises
    ------
    ValueError
        A scan is missing, given twice or shares its file name with another,
        an output name is too long for the file system or is a broken
        symbolic link, an output would replace an input, or an output
        exists and ``overwrite`` is False (and, with ``skip_existing``, its
        scan's results are not all there): nothing was read or written.

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> with Client(LocalCluster(n_workers=2, threads_per_worker=1)) as client:
    ...     reports = hs_aeunmix.apply_series(
    ...         "first.aeunmix", sorted(Path("day").glob("*.hspy")), client=client
    ...     )  # doctest: +SKIP
    """
    from hyperspy.defaults_parser import preferences
    from hyperspy.external.progressbar import progressbar

    sources = [Path(path) for path in files]
    folder = Path(output)
    model_inputs = _files_read(model)
    try:
        jobs = _jobs.plan_jobs(
            sources,
            folder,
            with_model=False,
            other_inputs=model_inputs,
            overwrite=overwrite,
            skip_existing=skip_existing,
        )
    except _jobs.Refusal as refusal:
        raise ValueError(str(refusal)) from None
    ensure_writable_folder(folder)
    data = model_file_bytes(model)
    if show_progressbar is None:
        show_progressbar = bool(preferences.General.show_progressbar)
    reports = {}
    for report in progressbar(
        unmix_series(
            data,
            jobs,
            lazy=lazy,
            overwrite=overwrite,
            device=device,
            client=client,
            show_progressbar=show_progressbar,
        ),
        total=len(jobs),
        desc="Unmixing scans",
        unit="scan",
        disable=not show_progressbar,
    ):
        if report.failed:
            _logger.warning(report.summary)
        reports[report.source] = report
    return [reports[job.source] for job in jobs]
