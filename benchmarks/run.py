"""Benchmark: ``algorithm="ae"`` against the unmixing methods microscopists use.

Prints, and writes to ``benchmarks/results/``, a markdown table of mean ± sd
spectral angle (rad), abundance RMSE, training and inference seconds per
method and case, over several seeds, and a figure of recovered vs true
endmembers (the default and the peers, first seed) for every case. Methods:
the default ``ae`` and its options (spatial, Poisson loss, volume penalty),
the presets of the seed papers, the peers (HyperSpy NMF, SVD + FastICA,
VCA + FCLS, MCR-ALS) and the per-pixel floor (least squares on the true
endmembers).

Usage::

    python benchmarks/run.py                      # every case, 3 seeds
    python benchmarks/run.py --cases eels3 --seeds 1 --methods ae VCA+FCLS

Endmembers are compared by spectral angle after Hungarian matching. Abundances
are compared as fractions relative to the reference endmembers' own
normalisation, the convention in which the synthetic truths and the Samson
reference maps are defined: for every method alike,
:func:`hs_aeunmix.metrics.fractions_on_reference_scale` multiplies each matched
loading map by the least-squares scale of its endmember relative to the
reference endmember (zero if that scale is not positive), clips at zero and
normalises each pixel to sum to one; the RMSE to the reference fractions is
then taken with ``scale="none"``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import hyperspy.api as hs
import matplotlib
import numpy as np
import scipy.io

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import hs_aeunmix
from hs_aeunmix import datasets

sys.path.insert(0, str(Path(__file__).parent))
import peers

RESULTS = Path(__file__).parent / "results"
SAMSON = Path(__file__).parents[1].parent / "shared" / "data" / "Samson.mat"


# --------------------------------------------------------------------- cases
def _samson(seed: int):
    """The real Samson scene; ``seed`` only changes the methods' seeds."""
    contents = scipy.io.loadmat(SAMSON)
    # Pixels are columns in column-major (Fortran) order of the 95 x 95 image.
    spectra = contents["Y"].T.reshape(95, 95, -1, order="F")
    signal = hs.signals.Signal1D(np.ascontiguousarray(spectra, dtype=np.float64))
    signal.metadata.General.title = "Samson"
    # S_GT are fractions relative to the max-normalised GT spectra: NNLS of
    # each spectrum on GT, divided by its sum, reproduces them to an RMSE of
    # 0.002. The raw NNLS abundances do not sum to one because Y and GT are
    # max-normalised separately (tests/test_benchmarks.py pins this).
    truth = datasets.GroundTruth(
        endmembers=contents["GT"].astype(float),
        abundances=contents["S_GT"].astype(float),
        names=("soil", "tree", "water"),
        noiseless=np.asarray(spectra, dtype=float),
    )
    return signal, truth


CASES: dict[str, Callable[[int], tuple]] = {
    "eels3": lambda seed: datasets.eels_chequerboard(3, random_state=seed),
    "eels4": lambda seed: datasets.eels_chequerboard(4, random_state=seed),
    "eels3_no_pure": lambda seed: datasets.eels_no_pure_pixel(3, random_state=seed),
    "raman4": lambda seed: datasets.raman_scene(4, scene="cell", random_state=seed),
    "samson": _samson,
    # Not run by default: the smoke test's case, small enough for seconds.
    "eels3_tiny": lambda seed: datasets.eels_chequerboard(
        3, shape=(16, 16), block_size=4, filter_size=3, random_state=seed
    ),
}
DEFAULT_CASES = ["eels3", "eels4", "eels3_no_pure", "raman4", "samson"]


# ------------------------------------------------------------------- methods
def _ae(**options) -> Callable:
    """The autoencoder, with the time to unmix the scan again once trained."""
    train = peers.autoencoder(**options)

    def run(signal, n, seed):
        result = train(signal, n, seed)
        spectra = signal.data.reshape(-1, signal.data.shape[-1])
        grid = {"image_shape": signal.data.shape[:-1]} if train.model.spatial else {}
        start = time.perf_counter()
        train.model.transform(spectra, **grid)
        run.inference_seconds = time.perf_counter() - start
        return result

    return run


FLOOR = "floor: least squares, true endmembers"
METHODS: dict[str, Callable] = {
    "ae": _ae(),
    "ae spatial": _ae(spatial=True),
    "ae poisson": _ae(loss="poisson"),
    # The volume penalty moves endmembers: they get the network's step size.
    "ae volume 1e-3": _ae(volume_weight=1e-3, endmember_learning_rate=1e-3),
    "ae volume 1e-2": _ae(volume_weight=1e-2, endmember_learning_rate=1e-3),
    # The convolutional presets cost seconds per epoch on this CPU (about 10 s
    # per epoch on 64 x 64 x 903): their budget is cut and says so.
    "preset pnas2024 (20 epochs)": _ae(preset="pnas2024", max_epochs=20),
    "preset volume (50 epochs)": _ae(preset="volume", max_epochs=50),
    "preset daeu": _ae(preset="daeu"),
    "preset udas": _ae(preset="udas"),
    **peers.PEERS,
    FLOOR: peers.floor,
}
DEFAULT_METHODS = list(METHODS)
# The figure compares the default with what users pick instead; the other
# rows are in the table.
FIGURE_METHODS = ("ae", "NMF", "SVD+ICA", "VCA+FCLS", "MCR-ALS")


# --------------------------------------------------------------------- run
def evaluate(case: str, method: str, seed: int):
    signal, truth = CASES[case](seed)
    n = truth.endmembers.shape[0]
    run = METHODS[method]
    start = time.perf_counter()
    result = run(signal, truth) if method == FLOOR else run(signal, n, seed)
    seconds = time.perf_counter() - start
    inference = getattr(run, "inference_seconds", float("nan"))
    endmembers, loadings, *reconstruction = result
    scores = peers.score(signal, truth, endmembers, loadings, *reconstruction)
    return {
        "angle": scores["angle"],
        "rmse": scores["rmse"],
        "residual": scores["residual"],
        "train_s": seconds,
        "infer_s": inference,
        "endmembers": endmembers,
        "order": scores["order"],
        "truth": truth,
        "axis": signal.axes_manager.signal_axes[0].axis,
    }


def _cell(values: list[float], digits: int) -> str:
    if all(np.isnan(values)):
        return "–"
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases", nargs="+", default=DEFAULT_CASES, choices=list(CASES)
    )
    parser.add_argument(
        "--methods", nargs="+", default=DEFAULT_METHODS, choices=list(METHODS)
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    hs.preferences.General.show_progressbar = False
    args.output.mkdir(parents=True, exist_ok=True)

    header = (
        "| case | method | spectral angle (rad) | abundance RMSE | relative residual "
        "| training (s) | inference (s) |\n| --- | --- | --- | --- | --- | --- | --- |"
    )
    rows = []
    for case in args.cases:
        figure_rows = {}
        for method in args.methods:
            try:
                scores = [evaluate(case, method, seed) for seed in range(args.seeds)]
            except ValueError as error:
                # A method that refuses the data (Poisson loss on negative
                # Raman intensities) is reported, not silently dropped.
                row = f"| {case} | {method} | refused: {str(error).split('.')[0]} ||||"
                rows.append(row)
                print(row, flush=True)
                continue
            if method in FIGURE_METHODS:
                figure_rows[method] = scores[0]
            row = (
                f"| {case} | {method} "
                f"| {_cell([s['angle'] for s in scores], 4)} "
                f"| {_cell([s['rmse'] for s in scores], 4)} "
                f"| {_cell([s['residual'] for s in scores], 4)} "
                f"| {_cell([s['train_s'] for s in scores], 2)} "
                f"| {_cell([s['infer_s'] for s in scores], 3)} |"
            )
            rows.append(row)
            print(row, flush=True)
        _endmember_figure(case, figure_rows, args.output / f"endmembers_{case}.png")

    machine = (
        f"{platform.processor() or platform.machine()}, "
        f"{len(__import__('os').sched_getaffinity(0))} CPU cores, "
        f"torch {__import__('torch').__version__}, hs_aeunmix {hs_aeunmix.__version__}"
    )
    table = "\n".join(
        [
            f"Seeds per cell: {args.seeds}. Machine: {machine}.",
            "",
            header,
            *rows,
        ]
    )
    (args.output / "results.md").write_text(table + "\n")
    print()
    print(table)
    return 0


def _endmember_figure(case: str, results: dict, path: Path) -> None:
    if not results:
        return
    first = next(iter(results.values()))
    truth = first["truth"].endmembers
    n = truth.shape[0]
    figure, axes = plt.subplots(1, n, figsize=(3.5 * n, 3), layout="constrained")
    for index, ax in enumerate(np.atleast_1d(axes)):
        reference = truth[index] / np.linalg.norm(truth[index])
        ax.plot(first["axis"], reference, color="k", lw=2, label="truth")
        for method, scores in results.items():
            estimate = scores["endmembers"][scores["order"][index]]
            ax.plot(
                first["axis"], estimate / np.linalg.norm(estimate), lw=1, label=method
            )
        ax.set_title(f"{case}: {first['truth'].names[index]}")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
