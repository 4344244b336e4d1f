"""The ``hs-aeunmix`` command's front: its arguments, answered at once.

``--help``, ``--version`` and argument errors must answer without delay on
a microscope PC, but importing ``hs_aeunmix`` imports torch and HyperSpy
(seconds). This small package builds the parser with the standard library
alone; once the arguments are valid, :func:`main` hands them to
:mod:`hs_aeunmix._cli`, which does the work (see its documentation for
where results go, what a run never does and the exit status). The choices
and defaults shown in the help are therefore written out here;
``tests/test__cli.py`` checks them against the package's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "hs-aeunmix"
# Literal copies of the package's choices (importing those modules would
# import torch); tests/test__cli.py checks them against the package.
ENCODER_CHOICES = ("dense", "conv")
ABUNDANCE_CHOICES = ("sum_to_one", "nonnegative", "thresholded_sum_to_one")
LOSS_CHOICES = ("auto", "mse", "sad", "mse_sad", "poisson")
PRESET_CHOICES = ("pnas2024", "volume", "daeu", "udas")
# AEUnmix's defaults of the options the command line exposes, for the help
# text only (left out, an option keeps the estimator's or the preset's own).
ESTIMATOR_DEFAULTS = {
    "encoder": "dense",
    "abundance": "sum_to_one",
    "loss": "auto",
    "max_epochs": 40,
    "spatial": "auto",
}
DEFAULT_OUTPUT = Path("hs_aeunmix_results")
DEMO_OUTPUT = Path("hs_aeunmix_demo")
DEFAULT_SEED = 0
# hs_aeunmix._watch's defaults (tests/test__watch.py checks them).
WATCH_PATTERN = "*.hspy"
WATCH_INTERVAL = 1.0
WATCH_SETTLE = 2.0
EXIT_OK, EXIT_SOME_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 130


# ------------------------------------------------------------------ parser
class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``hs-aeunmix: ...``."""

    def error(self, message: str):
        self.exit(
            EXIT_REFUSED,
            f"{PROG}: {message} (see '{self.prog} --help')\n",
        )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _seed(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a non-negative integer nor 'none'"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _seconds(text: str) -> float:
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hs-aeunmix")
    except PackageNotFoundError:  # a source tree that is not installed
        return "0+unknown"


def _add_common_options(parser: argparse.ArgumentParser, default_output: Path):
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=default_output,
        metavar="FOLDER",
        help="folder for the results, created if missing (default: "
        f"./{default_output})",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace results of an earlier run (never an input of this run)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA, else Apple's MPS, else the CPU), cpu, cuda, cuda:N or mps "
        "(default: auto)",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        help="CPU threads for torch, BLAS/OpenMP and dask, so that acquisition "
        "software keeps its cores (default: all cores)",
    )
    parser.add_argument(
        "--no-progressbar", action="store_true", help="hide the progress bars"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log progress (this package's and HyperSpy's) and show the traceback "
        "of an error",
    )


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    """Training options; those left out keep the estimator's (or preset's) values."""
    group = parser.add_argument_group(
        "training", "Left out, an option keeps the preset's value, else AEUnmix's."
    )
    group.add_argument(
        "--preset",
        choices=PRESET_CHOICES,
        help="the method of one of the seed papers (see hs_aeunmix.presets); "
        "the options below replace its values (default: none)",
    )
    group.add_argument(
        "--encoder",
        choices=ENCODER_CHOICES,
        help="dense: fully connected layers; conv: the multi-branch 1-D "
        "convolutional encoder of the PNAS 2024 paper (default: the estimator's, "
        f"{ESTIMATOR_DEFAULTS['encoder']})",
    )
    group.add_argument(
        "--abundance",
        choices=ABUNDANCE_CHOICES,
        help="constraint on the abundances (default: the estimator's, "
        f"{ESTIMATOR_DEFAULTS['abundance']})",
    )
    group.add_argument(
        "--loss",
        choices=LOSS_CHOICES,
        help="auto: the squared error (each pixel's intensity is fitted apart "
        "from its composition); sad: spectral angle; poisson for counts "
        f"(default: the estimator's, {ESTIMATOR_DEFAULTS['loss']})",
    )
    group.add_argument(
        "--max-epochs",
        type=_positive_int,
        metavar="N",
        help="most passes over the pixels; training stops earlier when the "
        "held-out loss stops improving (default: the estimator's, "
        f"{ESTIMATOR_DEFAULTS['max_epochs']})",
    )
    group.add_argument(
        "--spatial",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let each pixel use its 3 x 3 neighbourhood (default: the "
        "estimator's, auto: on for scans in memory, off with --lazy)",
    )
    group.add_argument(
        "--seed",
        type=_seed,
        default=DEFAULT_SEED,
        help="seed of the initialisation, pixel shuffling and dropout, or 'none' "
        f"(default: {DEFAULT_SEED}, so that one command on one file always gives "
        "the same model; the Python API leaves random_state=None to the user)",
    )


def _add_keep_absent(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-absent",
        action="store_true",
        help="with --series: keep the map of a phase a scan is found to lack "
        "as trained, instead of setting it to zero (the series' table still "
        "says which; default: set to zero)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``hs-aeunmix`` argument parser (imports nothing heavy)."""
    parser = _Parser(
        prog=PROG,
        description="Unmix spectrum images with a physics-constrained autoencoder.",
        epilog="Results go to an output folder, never over an input and never "
        "over earlier results without --overwrite (the demo replaces its own). "
        "Exit status: 0 done, 1 some "
        "scans of 'apply' failed, 2 refused or failed, 130 interrupted. Ctrl-C "
        "during training stops it and saves the best model so far.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=False, help=argparse.SUPPRESS
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="unmix a built-in synthetic EELS spectrum image and score the result",
        description="Unmix a built-in synthetic EELS spectrum image (64 x 64 "
        "pixels, 200 channels, 3 endmembers) and score the result against the "
        "ground truth.",
    )
    _add_common_options(demo, DEMO_OUTPUT)
    _add_training_options(demo)
    train = commands.add_parser(
        "train",
        help="unmix a file HyperSpy can read; save the results and the model",
        description="Train a model on one spectrum image; write the results "
        "(scan_ae.hspy), the model (scan.aeunmix) and two figures.",
    )
    train.add_argument(
        "files",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="spectrum image (any HyperSpy format); several with --series",
    )
    train.add_argument(
        "--series",
        action="store_true",
        help="train one model on all FILES (a sample series: shared endmembers, "
        "each scan its own maps, energy offset and intensity); writes each "
        "scan's results and one model, FIRST_series.aeunmix",
    )
    train.add_argument(
        "-n",
        "--n-components",
        type=_positive_int,
        required=True,
        metavar="N",
        help="number of endmembers",
    )
    train.add_argument(
        "--signal-range",
        nargs=2,
        type=_finite_float,
        metavar=("START", "END"),
        help="train on this part of the signal axis only, in its calibrated "
        "units, as s.isig[START:END] (default: the whole axis)",
    )
    train.add_argument(
        "--lazy",
        action="store_true",
        help="load the scan lazily, for scans larger than memory: train on a "
        "random sample of at most 65,536 of its spectra read chunk by chunk, "
        "then unmix every pixel chunk by chunk (default: load the scan whole)",
    )
    _add_common_options(train, DEFAULT_OUTPUT)
    _add_training_options(train)
    _add_keep_absent(train)
    apply = commands.add_parser(
        "apply",
        help="unmix more scans with a trained model (no training)",
        description="Unmix scans with a trained model; a scan that fails does "
        "not stop the others. Results are named after each scan's file name "
        "(scan_ae.hspy, ...): two scans of the same name in one run are refused.",
    )
    apply.add_argument(
        "model",
        type=Path,
        help="model file (.aeunmix) or a results file (.hspy) unmixed with 'ae'",
    )
    apply.add_argument(
        "files", type=Path, nargs="+", help="spectrum images (any HyperSpy format)"
    )
    apply.add_argument(
        "--lazy",
        action="store_true",
        help="load each scan lazily and unmix it chunk by chunk, for scans "
        "larger than memory (default: load each scan whole)",
    )
    apply.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave the scans whose results the output folder already holds "
        "(all their files) and unmix the others, to resume an interrupted "
        "series without --overwrite (default: refuse to run when any result "
        "exists)",
    )
    cluster = apply.add_mutually_exclusive_group()
    cluster.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="unmix N scans at a time on a local dask cluster of N worker "
        "processes, one thread each (needs hs-aeunmix[cluster]; default: one "
        "scan after the other in this process)",
    )
    cluster.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="unmix the scans on the dask.distributed cluster at ADDRESS "
        "(tcp://host:8786); its workers must see the files and -o under the "
        "same paths (default: no cluster)",
    )
    _add_common_options(apply, DEFAULT_OUTPUT)
    _add_watch(commands)
    return parser


def _add_watch(commands) -> None:
    watch = commands.add_parser(
        "watch",
        help="unmix each new scan in a folder once it is written, with a model "
        "or one trained on the first scans (--series)",
        description="Watch FOLDER and unmix each scan that appears in it with a "
        "trained model, as 'apply' does, once the acquisition software has "
        "finished writing it: its size and modification time unchanged for "
        "--settle seconds, and the file readable (on Windows: not held open by "
        "another program). Hidden and temporary files (.name, ~name, *.tmp, "
        "*.part) are never read. A ledger in the output folder "
        "(.hs_aeunmix_watch.json) records every file handled, so that no file "
        "is unmixed twice, also across restarts; a file that changes is "
        "unmixed again, and one that failed is retried only once it changes. "
        "Results already in the output folder that the watch did not write "
        "are kept (the scan is skipped) unless --overwrite. With --series N "
        "instead of --model, the first N scans train one model jointly, as "
        "'train --series' does (saved as series.aeunmix in the output folder, "
        "their results written), which then unmixes every later scan; a restart "
        "applies that model and trains nothing again.",
        epilog="Ctrl-C stops the watch (a scan being unmixed, or the series' "
        "training, is abandoned, none of its files left) and prints how many "
        "files were done, failed and skipped. Exit status: 0 (also after "
        "Ctrl-C), 1 a file failed in a run that --once or --max-files ended, 2 "
        "refused (no folder, bad model, unreadable ledger, a series.aeunmix "
        "this watch did not train) or the series' training failed.",
    )
    watch.add_argument(
        "folder",
        type=Path,
        metavar="FOLDER",
        help="folder to watch (its subfolders are not)",
    )
    source = watch.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "-m",
        "--model",
        type=Path,
        help="model file (.aeunmix) or a results file (.hspy) unmixed with 'ae' "
        "(no default: give --model or --series)",
    )
    source.add_argument(
        "--series",
        type=_positive_int,
        metavar="N",
        help="train one model jointly on the first N scans (with -n and the "
        "training options below), save it as series.aeunmix in the output "
        "folder, then unmix every later scan with it (default: none, --model)",
    )
    watch.add_argument(
        "-n",
        "--n-components",
        type=_positive_int,
        metavar="K",
        help="number of endmembers of the --series model (required with "
        "--series, refused without; default: none)",
    )
    watch.add_argument(
        "--pattern",
        action="append",
        metavar="GLOB",
        help="unmix the files whose names match GLOB (any case), of those with "
        "an extension HyperSpy reads; repeat for several, as --pattern '*.hspy' "
        f"--pattern '*.emd' (default: {WATCH_PATTERN})",
    )
    watch.add_argument(
        "--interval",
        type=_positive_seconds,
        default=WATCH_INTERVAL,
        metavar="SECONDS",
        help=f"time between looks at the folder (default: {WATCH_INTERVAL})",
    )
    watch.add_argument(
        "--settle",
        type=_seconds,
        default=WATCH_SETTLE,
        metavar="SECONDS",
        help="how long a file's size and modification time must stay unchanged "
        f"before it counts as written (default: {WATCH_SETTLE})",
    )
    watch.add_argument(
        "--once",
        action="store_true",
        help="look twice, --settle seconds apart, unmix the files that are "
        "written, then exit (for cron and scripts)",
    )
    watch.add_argument(
        "--max-files",
        type=_positive_int,
        metavar="N",
        help="exit after N files unmixed or failed (default: no limit)",
    )
    watch.add_argument(
        "--lazy",
        action="store_true",
        help="load each scan lazily and unmix it chunk by chunk, for scans "
        "larger than memory (default: load each scan whole)",
    )
    _add_common_options(watch, DEFAULT_OUTPUT)
    _add_training_options(watch)
    _add_keep_absent(watch)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hs-aeunmix`` console script.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status (see :mod:`hs_aeunmix._cli`).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "skip_existing", False) and args.overwrite:
        # Answered here, before the package's heavy imports.
        parser.error(
            "--skip-existing keeps earlier results and --overwrite replaces them; "
            "give one of them"
        )
    from hs_aeunmix._cli import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
