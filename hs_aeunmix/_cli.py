"""The work of ``hs-aeunmix demo``, ``train FILE -n N`` and ``apply MODEL FILES``.

Where results go
    Into an output folder (``-o``; default ``./hs_aeunmix_results``, and
    ``./hs_aeunmix_demo`` for ``demo``), never beside the raw data unless
    ``-o`` says so. For an input ``scan.<ext>`` a run writes
    ``scan_ae.hspy`` (the signal with its decomposition results, which
    carry the model), ``scan_endmembers.png``, ``scan_abundances.png`` and,
    for ``train``, ``scan.aeunmix`` (the model).

What a run never does
    Checked for every output of the run before any training or unmixing
    starts, so that a long run never fails at its end:

    * write over one of its inputs (a scan, the model), even with
      ``--overwrite``;
    * write two inputs' results under one name: results are named after
      their input's file name alone, so ``dirA/scan.hspy`` and
      ``dirB/scan.hspy`` in one run are refused, naming both (unmix them
      in two runs with their own ``-o``);
    * replace an existing result without ``--overwrite`` (``apply
      --skip-existing`` leaves the scans whose results are all there and
      unmixes the others, to resume an interrupted series);
    * write a file whose name is too long for the output folder's file
      system, or where a broken symbolic link stands;
    * start without a writable output folder (created when missing).

    Every file is written through :mod:`hs_aeunmix._files`: to a temporary
    file in the output folder, then renamed, so a failure or Ctrl-C never
    leaves a partial file. A scan's files are renamed together once all are
    written, after a check that the disk has room for them: a scan that
    fails (disk full, a dask worker that dies) leaves none of its files,
    and unmixing it again does not find them in its way.

Start-up
    The parser lives in :mod:`hs_aeunmix_cli`, which imports nothing heavy,
    so that ``--help``, ``--version`` and argument errors answer at once;
    this module (torch, HyperSpy) is imported once the arguments are valid.

Exit status
    0: done (also when Ctrl-C stopped training: the best model so far is
    saved with the results); 1: some scans of ``apply`` failed, the others
    were written; 2: the command was refused or failed (argument error,
    missing or unreadable input or model, existing output, training error);
    130: interrupted by Ctrl-C outside training. Every error is one line
    ``hs-aeunmix: <message>`` on stderr; ``-v`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence

from hs_aeunmix import _jobs
from hs_aeunmix._files import (
    ensure_writable_folder,
)
from hs_aeunmix_cli import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_SOME_FAILED,
    PROG,
    WATCH_PATTERN,
)

_logger = logging.getLogger(__name__)


# Thread-count variables read by OpenMP, BLAS libraries and numba when they
# load; --threads sets them for libraries loaded after it takes effect.
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def _plan(args: argparse.Namespace) -> list[_jobs.Job]:
    """Check what a command will write, and its output folder, before any work."""
    if args.command == "demo":
        jobs = [_jobs.job_for(None, "eels_chequerboard", args.output, True)]
        # The demo's files come from built-in data: typing the command again
        # replaces them (only a folder in their place is refused).
        _jobs.check_existing(jobs, args.output, overwrite=True)
    elif args.command == "train":
        start, end = args.signal_range or (None, None)
        if start is not None and not start < end:
            raise _jobs.Refusal(
                f"--signal-range {start:g} {end:g}: START must be below END."
            )
        if len(args.files) > 1 and not args.series:
            raise _jobs.Refusal(
                f"{len(args.files)} files given to train: add --series to train "
                "one model on all of them, or train them one at a time."
            )
        if args.keep_absent and not args.series:
            raise _jobs.Refusal(
                "--keep-absent is for --series: one scan alone has no phase "
                "found absent."
            )
        jobs = _jobs.plan_jobs(
            args.files,
            args.output,
            with_model=not args.series,
            series_model=args.series,
            overwrite=args.overwrite,
        )
    else:
        if not args.model.exists():
            raise _jobs.Refusal(f"no model file at {args.model}")
        jobs = _jobs.plan_jobs(
            args.files,
            args.output,
            with_model=False,
            other_inputs=[args.model],
            overwrite=args.overwrite,
            skip_existing=getattr(args, "skip_existing", False),
        )
    ensure_writable_folder(args.output)
    return jobs


# ------------------------------------------------------------------ running
def _estimator_options(args: argparse.Namespace) -> dict:
    given = {
        "preset": args.preset,
        "encoder": args.encoder,
        "abundance": args.abundance,
        "loss": args.loss,
        "max_epochs": args.max_epochs,
        "spatial": args.spatial,
    }
    return {
        **{name: value for name, value in given.items() if value is not None},
        "random_state": args.seed,
        "device": args.device,
        "show_progressbar": not args.no_progressbar,
    }


def _train_and_save(
    signal, n_components: int, args, job: _jobs.Job, truth=None
) -> None:
    """Train on ``signal``; write results, model and figures; print a summary."""
    import numpy as np

    from hs_aeunmix import metrics

    start = time.perf_counter()
    with warnings.catch_warnings():
        # Said once below, in the command line's words.
        warnings.filterwarnings("ignore", "Training interrupted", UserWarning)
        model = signal.decomposition(
            algorithm="ae",
            output_dimension=n_components,
            return_info=True,
            print_info=False,
            **_estimator_options(args),
        )
    seconds = time.perf_counter() - start
    history = model.history_
    best = history.best_epoch
    lines = [
        f"data            {_jobs.describe_signal(signal, job.stem)}",
        f"endmembers      {n_components}",
        f"training        {seconds:.2f} s, {history.n_epochs} epochs "
        + (f"(best {best + 1})" if best >= 0 else "(the initial endmembers kept)")
        + f", device {model.device_}",
    ]
    if best >= 0:
        lines.append(
            f"final loss      training {history.train_loss[best]:.4g}"
            + (
                f", validation {history.validation_loss[best]:.4g}"
                if history.validation_loss
                else ""
            )
        )
    reference = None
    if truth is not None:
        factors = signal.learning_results.factors.T
        scores = metrics.unmixing_scores(
            factors, signal.learning_results.loadings, truth
        )
        order = np.array(scores["order"])
        lines += [
            "spectral angle  "
            + ", ".join(f"{np.degrees(a):.2f}°" for a in scores["sad_rad"].values())
            + f" (mean {scores['mean_sad_rad']:.4f} rad)",
            f"abundance RMSE  {scores['abundance_rmse']:.4f} (fractions)",
        ]
        reference = np.full_like(factors, np.nan)
        reference[order] = truth.endmembers
    written = _jobs.write_results(
        signal, job, overwrite=args.overwrite, model=model, reference=reference
    )
    lines += [f"wrote           {path}" for path in written]
    print("\n".join(lines))
    if history.interrupted:
        print(
            f"{PROG}: training was interrupted (Ctrl-C) after {history.n_epochs} "
            "complete epochs; the best model so far was saved with the results.",
            file=sys.stderr,
        )


@contextlib.contextmanager
def _hyperspy_progressbars(show: bool) -> Iterator[None]:
    """HyperSpy's bars (loading, lazy unmixing, saving) follow --no-progressbar."""
    from hs_aeunmix._hyperspy_internals import progressbars_shown

    with progressbars_shown(show):
        yield


def _crop(signal, signal_range):
    """``signal.isig[start:end]`` in calibrated units, checked against the axis."""
    if signal_range is None:
        return signal
    start, end = signal_range
    axis = signal.axes_manager.signal_axes[0]
    low, high = float(axis.low_value), float(axis.high_value)
    units = f" {axis.units}" if isinstance(axis.units, str) and axis.units else ""
    if end <= low or start > high:
        raise _jobs.Refusal(
            f"--signal-range {start:g} {end:g} lies outside the signal axis "
            f"({low:g} to {high:g}{units})."
        )
    cropped = signal.isig[
        (start if start > low else None) : (end if end <= high else None)
    ]
    if cropped.axes_manager.signal_size < 2:
        raise _jobs.Refusal(
            f"--signal-range {start:g} {end:g} holds "
            f"{cropped.axes_manager.signal_size} channel(s) of the signal axis."
        )
    return cropped


def run_demo(args: argparse.Namespace, jobs: Sequence[_jobs.Job]) -> int:
    from hs_aeunmix.datasets import eels_chequerboard

    signal, truth = eels_chequerboard(3, random_state=args.seed)
    print(
        "Built-in data: synthetic STEM-EELS scan of 3 phases (64 x 64 pixels, 200 "
        "channels, Poisson noise), Brun et al.'s chequerboard protocol: 8-pixel "
        "blocks assigned to a phase at random, then a 9-pixel mean filter, so "
        "neighbouring blocks of one phase merge into patches and pixels near "
        "their boundaries mix."
    )
    _train_and_save(signal, 3, args, jobs[0], truth=truth)
    return EXIT_OK


def run_train(args: argparse.Namespace, jobs: Sequence[_jobs.Job]) -> int:
    if args.series:
        return _train_series(args, jobs)
    signal = _jobs.load_single_signal(
        args.files[0], lazy=args.lazy, verbose=args.verbose
    )
    try:
        _train_and_save(
            _crop(signal, args.signal_range), args.n_components, args, jobs[0]
        )
    finally:
        _jobs.close_signal(signal)
    return EXIT_OK


def _train_series(args: argparse.Namespace, jobs: Sequence[_jobs.Job]) -> int:
    """One model for all the scans (:func:`hs_aeunmix.decompose_series`)."""
    from hs_aeunmix._joint import decompose_series

    signals = [
        _crop(
            _jobs.load_single_signal(job.source, lazy=args.lazy, verbose=args.verbose),
            args.signal_range,
        )
        for job in jobs
    ]
    try:
        start = time.perf_counter()
        fit = decompose_series(
            signals,
            args.n_components,
            zero_absent=not args.keep_absent,
            **_estimator_options(args),
        )
        print(
            f"trained one model on {len(signals)} scans in "
            f"{time.perf_counter() - start:.2f} s, device {fit.model.device_}\n{fit}"
        )
        _jobs.write_file(jobs[0].model, args.overwrite, fit.model.save)
        print(f"wrote           {jobs[0].model}")
        for scan, job in zip(fit.scans, jobs, strict=True):
            # Each scan's results carry the model in the scan's own frame.
            written = _jobs.write_results(scan.signal, job, overwrite=args.overwrite)
            print("\n".join(f"wrote           {path}" for path in written))
    finally:
        for signal in signals:
            _jobs.close_signal(signal)
    return EXIT_OK


def run_apply(args: argparse.Namespace, jobs: Sequence[_jobs.Job]) -> int:
    """Unmix every scan with the model; a scan that fails does not stop the rest.

    With ``--workers N`` the scans are unmixed on a local dask cluster of N
    worker processes, with ``--scheduler ADDRESS`` on an existing cluster;
    otherwise here, one after the other.
    """
    from hyperspy.external.progressbar import progressbar

    from hs_aeunmix._estimator import load_model
    from hs_aeunmix._series import model_file_bytes, unmix_series

    # Read and checked once, here: a bad model file stops the run at once.
    model = load_model(args.model, device=args.device)
    failures = 0
    with _cluster_client(args.workers, args.scheduler) as client:
        reports = unmix_series(
            model_file_bytes(model),
            jobs,
            lazy=args.lazy,
            overwrite=args.overwrite,
            device=args.device,
            client=client,
            show_progressbar=not args.no_progressbar,
        )
        progress = progressbar(
            reports,
            total=len(jobs),
            desc="Unmixing scans",
            unit="scan",
            disable=args.no_progressbar,
        )
        for report in progress:
            if report.failed:
                failures += 1
                progress.write(f"{PROG}: {report.summary}", file=sys.stderr)
                continue
            if report.skipped:
                progress.write(report.summary)
                continue
            progress.write(
                f"{report.summary}: unmixed in {report.seconds:.3f} s, wrote "
                + ", ".join(str(path) for path in report.written)
            )
    if failures:
        print(f"{PROG}: {failures} of {len(jobs)} scans failed", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def run_watch(args: argparse.Namespace, jobs: Sequence[_jobs.Job] = ()) -> int:
    """Unmix each scan that appears in ``args.folder`` (:mod:`hs_aeunmix._watch`).

    Each file's outcome is printed as ``apply`` prints it; a summary line
    ends the run, also after Ctrl-C. The jobs are planned file by file as
    the scans appear (``jobs`` is unused). With ``--series N`` the first N
    scans train the model (``OUT/series.aeunmix``); what was trained, the
    series' table, is printed once it is.
    """
    from hs_aeunmix._watch import DONE, FAILED, watch_folder

    training = {
        "--preset": args.preset,
        "--encoder": args.encoder,
        "--abundance": args.abundance,
        "--loss": args.loss,
        "--max-epochs": args.max_epochs,
        "--spatial/--no-spatial": args.spatial,
        "--keep-absent": True if args.keep_absent else None,
    }
    if args.series is not None and args.n_components is None:
        raise _jobs.Refusal(
            f"--series {args.series} needs -n/--n-components K, the number of "
            "endmembers of the model to train."
        )
    if args.series is None:
        if args.n_components is not None:
            raise _jobs.Refusal(
                "-n/--n-components is for --series; the --model has its own endmembers."
            )
        given = [flag for flag, value in training.items() if value is not None]
        if given:
            raise _jobs.Refusal(
                f"{', '.join(given)}: training options are for --series; the "
                "--model is applied as it is."
            )
        if not args.model.exists():
            raise _jobs.Refusal(f"no model file at {args.model}")
    patterns = args.pattern or [WATCH_PATTERN]

    def report(result) -> None:
        if result.outcome == FAILED:
            print(f"{PROG}: {result.message}", file=sys.stderr, flush=True)
        elif result.outcome == DONE:
            print(
                f"{result.message}: "
                + ("trained on with the series" if result.series else "unmixed")
                + f" in {result.seconds:.3f} s, wrote "
                + ", ".join(str(path) for path in result.written),
                flush=True,
            )
        else:
            print(result.message, flush=True)

    def report_series(trained) -> None:
        if trained.fit is None:
            print(
                f"{PROG}: applying {trained.model}, trained by an earlier run on "
                f"{len(trained.sources)} scans",
                flush=True,
            )
            return
        print(
            f"trained one model on {len(trained.sources)} scans in "
            f"{trained.seconds:.2f} s, device {trained.fit.model.device_}\n"
            f"{trained.fit}\nwrote           {trained.model}",
            flush=True,
        )

    if not args.once:
        print(
            f"{PROG}: watching {args.folder} for {' '.join(patterns)} every "
            f"{args.interval:g} s, results in {args.output}; Ctrl-C stops",
            flush=True,
        )
    series = {}
    if args.series is not None:
        series = {
            "series": args.series,
            "n_components": args.n_components,
            "training_options": {
                **_estimator_options(args),
                **({"zero_absent": False} if args.keep_absent else {}),
            },
            "on_series": report_series,
        }
    summary = watch_folder(
        args.folder,
        args.model,
        args.output,
        pattern=patterns,
        interval=args.interval,
        settle=args.settle,
        overwrite=args.overwrite,
        once=args.once,
        max_files=args.max_files,
        on_result=report,
        lazy=args.lazy,
        device=args.device,
        **series,
    )
    print(f"{PROG}: watch ended: {summary.line()}")
    if summary.failed and not summary.interrupted:
        return EXIT_SOME_FAILED
    return EXIT_OK


@contextlib.contextmanager
def _cluster_client(workers: int | None, scheduler: str | None) -> Iterator:
    """A dask.distributed client for ``--workers``/``--scheduler``, else None."""
    if workers is None and scheduler is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise _jobs.Refusal(
            "--workers and --scheduler need dask.distributed: "
            'pip install "hs-aeunmix[cluster]"'
        ) from None
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    # One thread per worker: a worker holds one scan at a time, and torch
    # and BLAS get one core each.
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


# -------------------------------------------------------------- environment
@contextlib.contextmanager
def _thread_limit(threads: int | None) -> Iterator[None]:
    """At most ``threads`` CPU threads in torch, BLAS/OpenMP and dask; restored after.

    Environment variables cover the libraries loaded from now on;
    threadpoolctl those already loaded (numpy's and scipy's BLAS, torch's
    OpenMP), ``torch.set_num_threads`` torch's own pool and dask's
    ``num_workers`` the chunks of a lazy scan.
    """
    if threads is None:
        yield
        return
    with contextlib.ExitStack() as stack:
        previous = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
        stack.callback(_restore_environment, previous)
        os.environ.update(dict.fromkeys(_THREAD_VARIABLES, str(threads)))
        import dask
        import torch
        from threadpoolctl import threadpool_limits

        torch_threads = torch.get_num_threads()
        stack.callback(torch.set_num_threads, torch_threads)
        torch.set_num_threads(threads)
        stack.enter_context(threadpool_limits(limits=threads))
        stack.enter_context(dask.config.set(num_workers=threads))
        yield


def _restore_environment(previous: dict[str, str | None]) -> None:
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def _warnings_as_lines(verbose: bool) -> Iterator[None]:
    """Print each warning as one line ``hs-aeunmix: warning: ...`` on stderr.

    Deprecation notices of libraries, which a user of the command cannot
    act on, are shown with ``-v`` only.
    """

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        print(f"{PROG}: warning: {text}", file=file or sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        if not verbose:
            for category in (
                DeprecationWarning,
                PendingDeprecationWarning,
                FutureWarning,
            ):
                warnings.simplefilter("ignore", category)
            warnings.filterwarnings("ignore", category=_visible_deprecation())
        yield


class _LineFormatter(logging.Formatter):
    """``hs-aeunmix: <level>: <message>`` on one line (INFO without a level)."""

    def format(self, record: logging.LogRecord) -> str:
        text = " ".join(record.getMessage().split())
        if record.levelno >= logging.WARNING:
            return f"{PROG}: {record.levelname.lower()}: {text}"
        return f"{PROG}: {text}"


@contextlib.contextmanager
def _log_lines(verbose: bool) -> Iterator[None]:
    """Print this package's log records as lines on stderr; HyperSpy's with -v.

    Records do not reach the root logger meanwhile: HyperSpy prints its own
    with its own handler, and a root handler would print them twice.
    """
    package = logging.getLogger("hs_aeunmix")
    hyperspy_logger = logging.getLogger("hyperspy")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    previous = (package.level, package.propagate, hyperspy_logger.level)
    package.setLevel(logging.INFO if verbose else logging.WARNING)
    package.propagate = False
    package.addHandler(handler)
    if verbose:
        hyperspy_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(previous[0])
        package.propagate = previous[1]
        hyperspy_logger.setLevel(previous[2])


def _visible_deprecation() -> type[Warning]:
    try:
        from hyperspy.exceptions import VisibleDeprecationWarning
    except ImportError:  # pragma: no cover
        return DeprecationWarning
    return VisibleDeprecationWarning


def run(args: argparse.Namespace) -> int:
    """Run a parsed command (see :func:`hs_aeunmix_cli.main`); the exit status."""
    runner = {
        "demo": run_demo,
        "train": run_train,
        "apply": run_apply,
        "watch": run_watch,
    }[args.command]
    try:
        # watch plans each scan's job as the scan appears.
        jobs = [] if args.command == "watch" else _plan(args)
        with (
            _thread_limit(args.threads),
            _warnings_as_lines(args.verbose),
            _log_lines(args.verbose),
            _hyperspy_progressbars(not args.no_progressbar),
        ):
            return runner(args, jobs)
    except KeyboardInterrupt:
        print(
            f"{PROG}: interrupted (Ctrl-C); files written before the interruption "
            "are complete, none is partial.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception as error:  # one line, never a traceback
        print(f"{PROG}: {_jobs.one_line(error)}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return EXIT_REFUSED
