"""A run's jobs: the files each scan writes, reading a scan, writing its results.

Shared by the command line (:mod:`hs_aeunmix._cli`), :func:`hs_aeunmix.apply_series`
(:mod:`hs_aeunmix._series`) and the watched folder (:mod:`hs_aeunmix._watch`):
:func:`plan_jobs` names every output of a run and refuses, before any work,
a run that would write over an input, write two inputs' results under one
name, replace a result without ``overwrite``, or write a name the output
folder's file system cannot hold (the rules are listed in
:mod:`hs_aeunmix._cli`); :func:`write_results` writes a scan's files
together (:func:`hs_aeunmix._files.staged_files`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hs_aeunmix._files import (
    atomic_path,
    check_free_space,
    longest_name,
    staged_files,
)
from hs_aeunmix._hyperspy_internals import is_lazy

_logger = logging.getLogger(__name__)

RESULT_SUFFIX = "_ae.hspy"
# Room kept for a scan's two figures and its table beyond its arrays: a
# 120-dpi PNG of a few panels is well under a megabyte.
_FIGURES_BYTES = 4_000_000
# HDF5's own structures and attributes on top of the arrays' bytes.
_FILE_OVERHEAD = 1.1


class Refusal(Exception):
    """The command will not run as given (nothing was read or written)."""


# --------------------------------------------------------- planning outputs
@dataclass(frozen=True)
class Job:
    """One input of a run and the files it writes."""

    source: Path | None  # None: the built-in demo data
    stem: str
    results: Path
    endmembers: Path
    abundances: Path
    model: Path | None  # written by demo and train only
    uncertainty: Path
    table: Path
    # apply --skip-existing: the output folder holds all its results already.
    skip: bool = False

    @property
    def outputs(self) -> list[Path]:
        files = [
            self.results,
            self.model,
            self.endmembers,
            self.abundances,
            self.uncertainty,
            self.table,
        ]
        return [path for path in files if path is not None]

    @property
    def complete(self) -> bool:
        """Whether every file a run always writes for this job exists.

        The uncertainty maps are left out: a lazy scan has none.
        """
        return all(path.is_file() for path in self.outputs if path != self.uncertainty)

    @property
    def name(self) -> str:
        return str(self.source) if self.source is not None else self.stem


def job_for(source: Path | None, stem: str, folder: Path, with_model: bool) -> Job:
    return Job(
        source=source,
        stem=stem,
        results=folder / f"{stem}{RESULT_SUFFIX}",
        endmembers=folder / f"{stem}_endmembers.png",
        abundances=folder / f"{stem}_abundances.png",
        model=folder / f"{stem}.aeunmix" if with_model else None,
        uncertainty=folder / f"{stem}_uncertainty.hspy",
        table=folder / f"{stem}_endmembers.csv",
    )


def plan_jobs(
    sources: Sequence[Path],
    folder: Path,
    *,
    with_model: bool,
    series_model: bool = False,
    other_inputs: Sequence[Path] = (),
    overwrite: bool = False,
    skip_existing: bool = False,
) -> list[Job]:
    """The jobs of a run, after every check that can be made before working.

    Parameters
    ----------
    sources : sequence of pathlib.Path
        The scans, which must exist.
    folder : pathlib.Path
        The output folder (it need not exist).
    with_model : bool
        Whether each job also writes a model file.
    series_model : bool
        Whether the first job writes the model of the whole series,
        ``<first stem>_series.aeunmix`` (``train --series``).
    other_inputs : sequence of pathlib.Path
        Further inputs that no output may replace (the model of ``apply``).
    overwrite : bool
        Whether existing results may be replaced.
    skip_existing : bool
        Mark the jobs whose results all exist already ``skip`` instead of
        refusing them (those with a part of their results are refused).

    Returns
    -------
    list of Job

    Raises
    ------
    Refusal
        A scan is missing or given twice, two scans would write files of
        the same name, an output name is too long for the file system, a
        broken symbolic link stands at an output, an output would replace
        an input, or an output exists and neither ``overwrite`` nor (for a
        job whose results are complete) ``skip_existing`` is set.
    """
    missing = [path for path in sources if not path.exists()]
    if missing:
        raise Refusal(
            ("no such file: " if len(missing) == 1 else "no such files: ")
            + ", ".join(map(str, missing))
        )
    jobs = [job_for(path, path.stem, folder, with_model) for path in sources]
    if series_model and jobs:
        jobs[0] = replace(jobs[0], model=folder / f"{jobs[0].stem}_series.aeunmix")
    _check_distinct(jobs, folder)
    _check_names(jobs, folder)
    _check_inputs_kept([*sources, *other_inputs], jobs)
    if skip_existing and not overwrite:
        jobs = [replace(job, skip=True) if job.complete else job for job in jobs]
    check_existing(jobs, folder, overwrite, skip_existing)
    return jobs


def same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def _check_distinct(jobs: Sequence[Job], folder: Path) -> None:
    owners: dict[str, Job] = {}
    for job in jobs:
        for path in job.outputs:
            # Case-insensitive: Scan.hspy and scan.hspy collide on Windows
            # and macOS.
            other = owners.setdefault(path.name.casefold(), job)
            if other is job:
                continue
            if same_file(other.source, job.source):
                raise Refusal(f"{job.source} is given twice ({other.source}).")
            raise Refusal(
                f"{other.source} and {job.source} would both write {path.name} in "
                f"{folder}: results are named after their input's file name. "
                "Unmix them in separate runs with different -o folders, or "
                "rename one."
            )


def _check_names(jobs: Sequence[Job], folder: Path) -> None:
    """Refuse output names the file system cannot hold, before any work.

    Results are named after their scan, plus up to 17 bytes
    (``_uncertainty.hspy``): a scan whose name nearly fills the limit
    would otherwise fail only once it is unmixed.
    """
    limit = longest_name(folder)
    for job in jobs:
        for path in job.outputs:
            size = len(os.fsencode(path.name))
            if size > limit:
                raise Refusal(
                    f"the results of {job.name} would be named {path.name} "
                    f"({size} bytes), longer than the {limit} bytes a file name "
                    f"may have in {folder}; give the scan a shorter file name."
                )


def _check_links(jobs: Sequence[Job]) -> None:
    """Refuse outputs where a symbolic link points nowhere.

    ``exists()`` is False for such a link, so the other checks pass it;
    the final rename would then fail (without ``--overwrite``) or replace
    the link itself, which its owner meant to point somewhere.
    """
    for job in jobs:
        for path in job.outputs:
            if path.is_symlink() and not path.exists():
                raise Refusal(
                    f"{path} is a broken symbolic link; remove it or choose "
                    "another -o folder."
                )


def _check_inputs_kept(inputs: Sequence[Path], jobs: Sequence[Job]) -> None:
    for job in jobs:
        for path in job.outputs:
            if not path.exists():
                continue
            for source in inputs:
                if same_file(path, source):
                    raise Refusal(
                        f"{path} is an input of this run and would be overwritten "
                        f"by the results of {job.name}; choose another -o folder."
                    )


def check_existing(
    jobs: Sequence[Job], folder: Path, overwrite: bool, skip_existing: bool = False
) -> None:
    """Refuse outputs that exist (unless ``overwrite``), skipped jobs' aside."""
    _check_links(jobs)
    existing = [
        path for job in jobs if not job.skip for path in job.outputs if path.exists()
    ]
    folders = [path for path in existing if path.is_dir()]
    if folders:
        raise Refusal(f"{folders[0]} is a folder; a result file cannot replace it.")
    if existing and not overwrite:
        shown = ", ".join(path.name for path in existing[:3])
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        if skip_existing:
            raise Refusal(
                f"{folder} already holds a part of the results of this run "
                f"({shown}{more}): --skip-existing skips only scans whose results "
                "are all there; pass --overwrite to replace them, or remove them."
            )
        raise Refusal(
            f"{folder} already holds results of this run ({shown}{more}); pass "
            "--overwrite to replace them, or choose another -o folder."
        )


def describe_signal(signal, stem: str) -> str:
    return (
        f"{signal.metadata.General.title or stem}: "
        f"{signal.axes_manager.navigation_shape} pixels x "
        f"{signal.axes_manager.signal_size} channels"
    )


def write_file(path: Path, overwrite: bool, write) -> None:
    """``write(temporary)``, then the temporary file replaces ``path``.

    An error names ``path``, not the temporary file the writer saw.
    """
    try:
        with atomic_path(path, overwrite=overwrite) as temporary:
            write(temporary)
    except OSError as error:
        if error.filename is not None and Path(error.filename) == path:
            raise
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error


def _stage(staged, path: Path, write) -> None:
    """``write`` the temporary file that will replace ``path`` (:func:`staged_files`).

    An error names ``path``, also where a writer (h5py) puts the temporary
    file's name in its message rather than in ``filename``.
    """
    temporary = staged.add(path)
    try:
        write(temporary)
    except OSError as error:
        if error.filename is not None and Path(error.filename) in (path, temporary):
            raise  # staged_files names ``path`` instead of ``temporary``
        text = (error.strerror or str(error)).replace(str(temporary), str(path))
        text = text.replace(temporary.name, path.name)
        raise OSError(error.errno, text, str(path)) from error


def _estimated_bytes(signal, model) -> int:
    """About how many bytes a scan's files take, from the arrays they hold.

    The results file holds the data (counted uncompressed: an upper bound)
    and the learning results, the model's file among them; the uncertainty
    maps are the size of the loadings; a trained model's own file is
    smaller than the learning results that store it.
    """
    learning = 0
    for value in vars(signal.learning_results).values():
        size = len(value) if isinstance(value, bytes) else getattr(value, "nbytes", 0)
        learning += size if isinstance(size, int) else 0
    loadings = getattr(signal.learning_results.loadings, "nbytes", 0)
    arrays = getattr(signal.data, "nbytes", 0) + learning + loadings
    if model is not None:
        arrays += learning
    return int(arrays * _FILE_OVERHEAD) + _FIGURES_BYTES


def write_results(
    signal, job: Job, *, overwrite: bool, model=None, reference=None
) -> list[Path]:
    """Write the results file, the model, the figures and the tables of ``job``.

    The uncertainty maps (:func:`hs_aeunmix.get_uncertainty`) need the scan
    in memory: for a lazy scan they are not written (and not listed). The
    files are put in place together once all are written, the results file
    last (:func:`hs_aeunmix._files.staged_files`): an error, or a process
    killed meanwhile, leaves none of them. A disk without room for them is
    refused before the first is written.

    Raises
    ------
    OSError
        The disk lacks room (``errno.ENOSPC``, naming the results file and
        both sizes), or a writer failed; nothing of ``job`` was written.
    """
    from hyperspy.defaults_parser import preferences

    from hs_aeunmix._estimator import load_model
    from hs_aeunmix._figures import FIGURE_DPI, abundance_figure, endmember_figure
    from hs_aeunmix._hyperspy import get_uncertainty, sample_elements
    from hs_aeunmix._hyperspy_internals import is_lazy

    # The .hspy writer draws a bar while it computes lazy data unless told
    # not to: it does not read HyperSpy's preference (--no-progressbar).
    bars = bool(preferences.General.show_progressbar)
    check_free_space(job.results, _estimated_bytes(signal, model))
    with staged_files(overwrite=overwrite) as staged:
        if model is not None and job.model is not None:
            _stage(staged, job.model, model.save)
        figures = {
            job.endmembers: endmember_figure(
                signal.get_decomposition_factors(), reference
            ),
            job.abundances: abundance_figure(signal.get_decomposition_loadings()),
        }
        for path, figure in figures.items():
            _stage(staged, path, functools.partial(figure.savefig, dpi=FIGURE_DPI))
        # The model that unmixed this scan: the one just trained, or the one
        # its learning results carry (apply: a rescaled or fine-tuned copy).
        applied = model if model is not None else load_model(signal)
        _stage(
            staged,
            job.table,
            functools.partial(
                write_endmember_table,
                applied.describe_endmembers(elements=sample_elements(signal)),
            ),
        )
        if not is_lazy(signal):
            sigma = get_uncertainty(signal, applied)
            # The temporary file exists already: HyperSpy must replace it.
            _stage(
                staged,
                job.uncertainty,
                lambda path: sigma.save(path, overwrite=True, show_progressbar=bars),
            )
        # Put in place last: a results file stands for a scan whose files
        # are all there (apply --skip-existing).
        _stage(
            staged,
            job.results,
            lambda path: signal.save(path, overwrite=True, show_progressbar=bars),
        )
    # In the order the help and the reports have always listed them.
    order = [job.results, job.model, job.endmembers, job.abundances, job.table]
    return [path for path in [*order, job.uncertainty] if path in staged.targets]


def write_endmember_table(descriptions, path: Path) -> None:
    """One row per endmember: what it shows, its support, spread and warnings."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["endmember", "summary", "support", "spread_rad", "warnings"])
        for description in descriptions:
            writer.writerow(
                [
                    description.index,
                    description.summary,
                    "" if description.support is None else description.support,
                    "" if description.spread is None else f"{description.spread:.4f}",
                    "; ".join(warning.message for warning in description.warnings),
                ]
            )


@contextlib.contextmanager
def hyperspy_quiet(verbose: bool) -> Iterator[None]:
    """Silence HyperSpy's log while it reads a file: its errors are reported once."""
    hyperspy_logger = logging.getLogger("hyperspy")
    level = hyperspy_logger.level
    if not verbose:
        hyperspy_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        hyperspy_logger.setLevel(level)


def load_single_signal(path: Path, *, lazy: bool = False, verbose: bool = False):
    import hyperspy.api as hs

    try:
        with hyperspy_quiet(verbose):
            signal = hs.load(path, lazy=lazy)
    except Exception as error:  # HyperSpy's readers raise many kinds
        raise OSError(f"cannot read {path}: {one_line(error)}") from error
    if isinstance(signal, list):
        raise ValueError(
            f"{path} holds {len(signal)} signals; save the spectrum image on its "
            "own and try again."
        )
    return signal


def close_signal(signal) -> None:
    """Release the file a lazy signal reads from."""
    close = getattr(signal, "close_file", None)
    if is_lazy(signal) and close is not None:
        with contextlib.suppress(Exception):
            close()


def one_line(error: BaseException) -> str:
    """An error's message on one line, with the file an OSError concerns."""
    if isinstance(error, MemoryError):
        return (
            "not enough memory; read the scan chunk by chunk (--lazy) or crop "
            "it (train --signal-range)"
        )
    if isinstance(error, OSError) and error.strerror and error.filename:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())
