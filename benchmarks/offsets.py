"""Benchmark: how well a series scan's energy offset and its uncertainty are measured.

For ``decompose_series`` (issue 22). On synthetic series
(:func:`hs_aeunmix.datasets.eels_series`: 10 scans of 32 x 32 x 200, offsets
up to 3 channels of 1 eV, every third scan at 2 counts per channel), each
later scan's offset is measured against the first scan as
``decompose_series`` measures it (aligning the mean spectra's first
differences), and its uncertainty two ways: half the difference between
the offsets of the scan's even and odd pixels (used until 2026-12-05) and
the standard error from the offsets of 8 interleaved pixel subsets (used
since). Prints, per scan, the error against the true offset, both
uncertainties and the error in units of each; then, per dose class, the
median absolute error in those units (about 0.67 for an honest standard
error of Gaussian errors; far above it, the uncertainty is too small).
Last, two other estimates of the offsets (not used by the package): every
pair of scans aligned the same way and the offsets solved from all pairs
by least squares (the first scan at 0), unweighted and weighted by each
pair's inverse variance from the scans' standard errors; mean and median
absolute error per dose class against the first-scan reference's.
No training: a few seconds per series.

Usage::

    python benchmarks/offsets.py
    python benchmarks/offsets.py --seeds 0 1 2 3 4 5
"""

from __future__ import annotations

import argparse

import numpy as np

from hs_aeunmix import _joint, datasets
from hs_aeunmix._axes import SignalCalibration


def rows(seed: int) -> list[dict]:
    """One record per later scan of the series drawn from ``seed``."""
    signals, _, offsets = datasets.eels_series(10, (32, 32), random_state=seed)
    calibration = SignalCalibration.from_signal(signals[0])
    reference = _joint._mean_spectra(signals[0], calibration)[0]
    records = []
    pairwise = _pairwise(signals, calibration)
    for number, signal in enumerate(signals[1:], 1):
        data = np.asarray(signal.data, dtype=np.float64).reshape(-1, calibration.size)
        means = _joint._mean_spectra(signal, calibration)
        offset, standard_error = _joint._measured_offset(reference, list(means), 5.0)
        even, odd = (
            _joint._offset(reference, half.mean(axis=0), 5.0)
            for half in (data[0::2], data[1::2])
        )
        records.append(
            {
                "seed": seed,
                "scan": number + 1,
                "dose": "low" if number % 3 == 2 else "normal",
                "error": offset * calibration.scale - offsets[number],
                "halves": abs(even - odd) / 2 * calibration.scale,
                "subsets": standard_error * calibration.scale,
                **{
                    name: values[number] * calibration.scale - offsets[number]
                    for name, values in pairwise.items()
                },
            }
        )
    return records


def _pairwise(signals, calibration) -> dict[str, np.ndarray]:
    """Offsets (channels) solved from every pair, unweighted and weighted."""
    means = [list(_joint._mean_spectra(signal, calibration)) for signal in signals]
    errors = np.array(
        [_joint._measured_offset(means[0][0], scan, 5.0)[1] for scan in means]
    )
    # The first scan against itself has no spread: give it a typical one.
    errors[0] = np.median(errors[1:])
    n = len(signals)
    design, measured, weights = [], [], []
    for first in range(n):
        for second in range(first + 1, n):
            row = np.zeros(n)
            row[first], row[second] = -1.0, 1.0
            design.append(row)
            measured.append(_joint._offset(means[first][0], means[second][0], 5.0))
            weights.append(1.0 / np.sqrt(errors[first] ** 2 + errors[second] ** 2))
    design, measured = np.array(design), np.array(measured)
    solved = {}
    for name, weight in (
        ("pairs", np.ones(len(measured))),
        ("weighted pairs", np.array(weights)),
    ):
        # The first scan is the reference: its offset held at 0.
        anchored = np.vstack([design * weight[:, None], 1e6 * np.eye(n)[0]])
        target = np.append(measured * weight, 0.0)
        solved[name] = np.linalg.lstsq(anchored, target, rcond=None)[0]
    return solved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    args = parser.parse_args(argv)
    records = [record for seed in args.seeds for record in rows(seed)]
    print(
        "| seed | scan | dose | error (eV) | halves' spread (eV) | error / spread | "
        "subsets' standard error (eV) | error / standard error |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in records:
        print(
            f"| {r['seed']} | {r['scan']} | {r['dose']} | {r['error']:+.3f} | "
            f"{r['halves']:.3f} | {r['error'] / r['halves']:+.1f} | "
            f"{r['subsets']:.3f} | {r['error'] / r['subsets']:+.1f} |"
        )
    print()
    print(
        "| dose | scans | median abs error (eV) | median abs error / halves' spread "
        "| median abs error / standard error |"
    )
    by_dose = {
        dose: [r for r in records if r["dose"] == dose] for dose in ("normal", "low")
    }
    print("| --- | --- | --- | --- | --- |")
    for dose, chosen in by_dose.items():
        errors = np.abs([r["error"] for r in chosen])
        halves = np.array([r["halves"] for r in chosen])
        subsets = np.array([r["subsets"] for r in chosen])
        print(
            f"| {dose} | {len(chosen)} | {np.median(errors):.3f} | "
            f"{np.median(errors / halves):.1f} | {np.median(errors / subsets):.1f} |"
        )
    print()
    print(
        "| dose | absolute error (eV), mean / median: first scan as reference "
        "| all pairs | all pairs, weighted |"
    )
    print("| --- | --- | --- | --- |")
    for dose, chosen in by_dose.items():
        cells = []
        for key in ("error", "pairs", "weighted pairs"):
            errors = np.abs([r[key] for r in chosen])
            cells.append(f"{np.mean(errors):.3f} / {np.median(errors):.3f}")
        print(f"| {dose} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
