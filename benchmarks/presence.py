"""Can a scan's own spectra say that a phase is absent from it? (issue 22)

Trains ``decompose_series`` on the synthetic series of ``benchmarks/joint.py``
(10 scans of 32 x 32, one phase absent from two of them, three at low dose)
and asks, per scan and endmember, how much worse each of 512 sampled pixels
is fitted by non-negative least squares without that endmember, in units of
its noise (Poisson counts): the mean increase of chi-square per pixel, with
its standard error. An endmember a scan does not need costs about one unit
(one free coefficient fitting noise) or less; one it needs costs more. The
table shows whether the absent phase can be told from the present ones by
this measure: it can only where the dose lets every present phase cost
clearly more than the absent one.

Two measures that do not use the fit are printed beside it: the scan's
rank, the eigenvalues of its spectra's second moments (Poisson-whitened by
the scan's mean variance per channel) above the Marchenko-Pastur edge of
white noise, ``(1 + sqrt(channels / pixels))**2`` (with the largest below
it); and each endmember's angle (sine) to the subspace those eigenvectors
span. A phase absent from a scan should leave the rank one short and its
endmember outside the subspace.

The decision ``decompose_series`` takes from such measures (an effect size,
each phase's level against the series', with a pixel-by-pixel condition)
is chosen and scored in ``benchmarks/absent_decision.py``.

Usage::

    python benchmarks/presence.py          # about 1 minute on 2 cores
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np
from scipy.optimize import nnls


def chi_square_increase(spectra, endmembers, variance, rows) -> list[tuple]:
    """Per endmember: mean and standard error of chi-square added by its removal."""
    result = []
    for k in range(len(endmembers)):
        increases = []
        for row in rows:
            weights = 1.0 / np.sqrt(variance[row])
            design = (endmembers * weights).T
            target = spectra[row] * weights
            full = nnls(design, target)[1]
            without = nnls(np.delete(design, k, axis=1), target)[1]
            increases.append(without**2 - full**2)
        increases = np.array(increases)
        result.append((increases.mean(), increases.std() / np.sqrt(len(increases))))
    return result


def rank_and_sines(spectra: np.ndarray, endmembers: np.ndarray) -> tuple:
    """Signal rank of Poisson-whitened spectra, the edge, eigenvalues, sines."""
    from scipy.ndimage import gaussian_filter1d

    n_pixels, n_channels = spectra.shape
    variance = np.maximum(gaussian_filter1d(spectra, 2.0, axis=1), 1e-3).mean(0)
    whitened = spectra / np.sqrt(variance)
    values, vectors = np.linalg.eigh(whitened.T @ whitened / n_pixels)
    values, vectors = values[::-1], vectors[:, ::-1]
    edge = (1 + np.sqrt(n_channels / n_pixels)) ** 2
    rank = int(np.sum(values > edge))
    basis = vectors[:, :rank]
    sines = []
    for endmember in endmembers / np.sqrt(variance):
        outside = endmember - basis @ (basis.T @ endmember)
        sines.append(np.linalg.norm(outside) / np.linalg.norm(endmember))
    return rank, edge, values[: rank + 1], sines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import hyperspy.api as hs

    import hs_aeunmix
    from hs_aeunmix import datasets, metrics

    warnings.simplefilter("ignore")
    hs.preferences.General.show_progressbar = False
    signals, truths, _ = datasets.eels_series(10, (32, 32), random_state=args.seed)
    n = truths[0].n_endmembers
    fit = hs_aeunmix.decompose_series(
        [signal.deepcopy() for signal in signals], n, random_state=args.seed
    )
    trained = fit.model.signal_calibration_.trained_channels
    order = metrics.match_endmembers(
        fit.model.components_, truths[0].endmembers[:, trained]
    )
    # The model's endmember order[j] stands for the true phase j.
    names = [""] * n
    for phase, endmember in enumerate(order):
        names[endmember] = truths[0].names[phase]
    columns = " | ".join(f"without {name}" for name in names)
    sines = " | ".join(f"sine, {name}" for name in names)
    print(
        f"| scan | dose class | phases present | {columns} | rank (edge): "
        f"eigenvalues | {sines} |"
    )
    print("| --- " * (4 + 2 * n) + "|")
    rng = np.random.default_rng(args.seed)
    for number, (scan, signal, truth) in enumerate(
        zip(fit.scans, signals, truths, strict=True), 1
    ):
        spectra = signal.data.reshape(-1, signal.data.shape[-1]).astype(float)
        factors = np.asarray(scan.signal.learning_results.factors).T[:n]
        loadings = scan.signal.learning_results.loadings[:, :n]
        covered = np.isfinite(factors).all(axis=0)
        factors, spectra = factors[:, covered], spectra[:, covered]
        variance = np.maximum(loadings @ factors, 1.0)  # Poisson counts
        rows = rng.choice(len(spectra), min(512, len(spectra)), replace=False)
        increases = chi_square_increase(spectra, factors, variance, rows)
        present = truth.abundances.reshape(-1, n).max(axis=0) > 0
        dose = "low" if (number - 1) % 3 == 2 else "normal"  # as joint.py draws
        cells = [f"{mean:.2f} ± {error:.2f}" for mean, error in increases]
        rank, edge, values, angles = rank_and_sines(spectra, factors)
        cells.append(f"{rank} ({edge:.2f}): " + ", ".join(f"{v:.3g}" for v in values))
        cells += [f"{sine:.3f}" for sine in angles]
        shown = ", ".join(np.asarray(truth.names)[present])
        print(f"| {number} | {dose} | {shown} | {' | '.join(cells)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
