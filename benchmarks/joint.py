"""Benchmark: a sample series unmixed as one problem (``decompose_series``).

On a synthetic series (:func:`hs_aeunmix.datasets.eels_series`: 10 scans of
one specimen, phase fractions varying, Pt absent from every fourth scan, dose
varying with every third scan at 2 counts per channel, up to 3 channels of
energy offset between scans), three ways of unmixing are scored against the
truth, scan by scan:

* ``joint``: one model trained on the whole series (``decompose_series``),
* ``alone``: each scan trained by itself (``s.decomposition(algorithm="ae")``),
* ``reapplied``: a model trained on the first scan, applied to the others
  (``s.decomposition(algorithm="ae", model=first)``).

Prints the mean spectral angle and abundance RMSE per scan and method, the
mean Pt fraction on the scans without Pt, whether endmember *k* is the same
phase in every scan, the measured offsets against the true ones, and the
training times. Nothing here is a timed test.

Usage::

    python benchmarks/joint.py
    python benchmarks/joint.py --n-scans 10 --shape 32 32 --seed 0
"""

from __future__ import annotations

import argparse
import time
import warnings

import hyperspy.api as hs
import numpy as np

import hs_aeunmix
from hs_aeunmix import datasets, metrics


def _scores(endmembers, loadings, truth, channels=None) -> dict:
    if channels is not None:
        truth = datasets.GroundTruth(
            truth.endmembers[:, channels], truth.abundances, truth.names, None
        )
    return metrics.unmixing_scores(endmembers, loadings, truth)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-scans", type=int, default=10)
    parser.add_argument("--shape", type=int, nargs=2, default=[32, 32])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    hs.preferences.General.show_progressbar = False
    warnings.simplefilter("ignore")
    signals, truths, offsets = datasets.eels_series(
        args.n_scans, tuple(args.shape), random_state=args.seed
    )
    n = truths[0].n_endmembers
    absent = [
        i for i, truth in enumerate(truths) if truth.abundances[..., -1].max() == 0
    ]

    started = time.perf_counter()
    fit = hs_aeunmix.decompose_series(
        [signal.deepcopy() for signal in signals], n, random_state=args.seed
    )
    joint_seconds = time.perf_counter() - started
    trained = fit.model.signal_calibration_.trained_channels
    results = {"joint": [], "alone": [], "reapplied": []}
    for scan, truth in zip(fit.scans, truths, strict=True):
        loadings = scan.signal.learning_results.loadings[:, :n]
        results["joint"].append(
            _scores(fit.model.components_, loadings, truth, trained)
        )
    alone_seconds = []
    first = None
    for index, (signal, truth) in enumerate(zip(signals, truths, strict=True)):
        copy = signal.deepcopy()
        started = time.perf_counter()
        model = copy.decomposition(
            algorithm="ae",
            output_dimension=n,
            random_state=args.seed,
            print_info=False,
            return_info=True,
        )
        alone_seconds.append(time.perf_counter() - started)
        loadings = copy.learning_results.loadings[:, :n]
        results["alone"].append(_scores(model.components_, loadings, truth))
        if index == 0:
            first = model
        copy = signal.deepcopy()
        copy.decomposition(algorithm="ae", model=first, print_info=False)
        loadings = copy.learning_results.loadings[:, :n]
        results["reapplied"].append(_scores(first.components_, loadings, truth))

    print(
        f"{args.n_scans} scans of {args.shape[0]}x{args.shape[1]} pixels, seed "
        f"{args.seed}; Pt absent from scans {[i + 1 for i in absent]}\n"
    )
    print(
        "| scan | dose class | "
        + " | ".join(f"{m} angle / RMSE" for m in results)
        + " |"
    )
    print("| --- | --- |" + " --- |" * len(results))
    for index in range(args.n_scans):
        dose = "low" if index % 3 == 2 else "normal"
        cells = " | ".join(
            f"{results[m][index]['mean_sad_rad']:.4f} / "
            f"{results[m][index]['abundance_rmse']:.3f}"
            for m in results
        )
        print(f"| {index + 1} | {dose} | {cells} |")
    cells = " | ".join(
        f"{np.mean([s['mean_sad_rad'] for s in results[m]]):.4f} / "
        f"{np.mean([s['abundance_rmse'] for s in results[m]]):.3f}"
        for m in results
    )
    print(f"| mean | | {cells} |\n")

    print(
        "| method | mean Pt fraction where Pt is absent "
        "| same endmember order in every scan |"
    )
    print("| --- | --- | --- |")
    for method, scores in results.items():
        pt = [scores[i]["fractions"][:, -1].mean() for i in absent]
        orders = {tuple(s["order"]) for s in scores}
        same = (
            "yes (one model)"
            if method != "alone"
            else ("yes" if len(orders) == 1 else f"no ({len(orders)} orders)")
        )
        print(f"| {method} | {np.mean(pt):.3f} | {same} |")

    print("\n| scan | true offset (eV) | measured (eV) | trained on |")
    print("| --- | --- | --- | --- |")
    for index, scan in enumerate(fit.scans):
        print(
            f"| {index + 1} | {offsets[index]:+.3f} | {scan.offset:+.3f} ± "
            f"{scan.offset_uncertainty:.3f} | {scan.n_sampled} spectra |"
        )
    print(
        f"\nTraining: joint {joint_seconds:.1f} s for the series; alone "
        f"{np.mean(alone_seconds):.1f} s per scan ({np.sum(alone_seconds):.1f} s "
        "in all)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
