"""Shrinking each pixel's fractions by its own uncertainty: tried, refused.

An empirical-Bayes Wiener step needs no scan grid: each pixel's fractions
``a`` (sum-to-one directions only) move towards the scan's mean ``m`` by
``C (C + S_p)^-1 (a - m)``, where ``S_p`` is the pixel's Laplace covariance
(``model._fractions_and_covariance`` without the endmembers' error, which
every pixel shares and no shrinkage removes) and ``C`` the spread of the fractions
less the mean ``S_p``. Per generator, on the development scenes, the
abundance RMSE of the default's fractions, of the shrunk ones, of
non-negative least squares on the model's endmembers (with and without the
same shrinkage; models without a background only) and of least squares on
the *true* endmembers (the floor of per-pixel unmixing).

Usage::

    python benchmarks/shrinkage.py --n-scenes 8
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import family
import peers

COLUMNS = {
    "rmse": "default",
    "rmse_shrunk": "shrunk",
    "rmse_nnls": "NNLS on its endmembers",
    "rmse_nnls_shrunk": "NNLS, shrunk",
    "rmse_floor": "least squares, true endmembers",
}


def wiener(fractions: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """Fractions shrunk towards their mean by each pixel's covariance."""
    from hs_aeunmix._uncertainty import sum_preserving_basis

    k = fractions.shape[1]
    basis = sum_preserving_basis(k)
    usable = np.isfinite(fractions).all(1) & np.isfinite(covariance).all((1, 2))
    mean = fractions[usable].mean(0)
    centred = (fractions[usable] - mean) @ basis
    noise = np.einsum("ij,pjk,kl->pil", basis.T, covariance[usable], basis)
    spread = np.cov(centred.T).reshape(k - 1, k - 1) - noise.mean(0)
    values, vectors = np.linalg.eigh(spread)
    spread = (vectors * np.clip(values, 0, None)) @ vectors.T
    gain = spread @ np.linalg.inv(spread + noise)
    shrunk = mean + np.einsum("pij,pj->pi", gain, centred) @ basis.T
    shrunk = np.clip(shrunk, 0, None)
    result = fractions.copy()
    result[usable] = shrunk / shrunk.sum(1, keepdims=True)
    return result


def one(task: tuple[str, int]) -> dict:
    """The five RMSEs of one development scene."""
    import hyperspy.api as hs

    from hs_aeunmix import datasets, metrics
    from hs_aeunmix._uncertainty import fraction_covariance
    from hs_aeunmix._vca import nonnegative_least_squares

    generator, index = task
    warnings.simplefilter("ignore")
    hs.preferences.General.show_progressbar = False
    scene = getattr(datasets, family.GENERATORS[generator])
    signal, truth, _ = scene(index, "development")
    run = peers.autoencoder(spatial=False)
    run(signal.deepcopy(), truth.n_endmembers, index)
    model = run.model
    spectra = peers.spectra_of(signal)
    fractions, covariance = model._fractions_and_covariance(
        spectra, endmember_error=False
    )
    _, intensity = model.fractions(spectra)
    endmembers = model.components_

    def rmse(candidate, loadings):
        return metrics.unmixing_scores(candidate, loadings, truth)["abundance_rmse"]

    record = {
        "generator": generator,
        "rmse": rmse(endmembers, fractions * intensity[:, None]),
        "rmse_shrunk": rmse(
            endmembers, wiener(fractions, covariance) * intensity[:, None]
        ),
        "rmse_floor": rmse(truth.endmembers, peers.floor(signal, truth)[1]),
    }
    if not len(model.baseline_components_):
        loadings = nonnegative_least_squares(spectra, endmembers)
        total = loadings.sum(1)
        least = loadings / np.where(total > 0, total, 1)[:, None]
        shrunk = wiener(least, fraction_covariance(spectra, least, total, endmembers))
        record["rmse_nnls"] = rmse(endmembers, loadings)
        record["rmse_nnls_shrunk"] = rmse(endmembers, shrunk * total[:, None])
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-scenes", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    tasks = [(g, i) for g in family.GENERATORS for i in range(args.n_scenes)]
    with multiprocessing.Pool(args.jobs) as pool:
        records = pool.map(one, tasks)
    print("| generator | " + " | ".join(COLUMNS.values()) + " |")
    print("| --- " * (len(COLUMNS) + 1) + "|")
    for generator in family.GENERATORS:
        rows = [r for r in records if r["generator"] == generator]
        cells = []
        for key in COLUMNS:
            values = [r[key] for r in rows if key in r]
            worse = sum(r[key] > r["rmse"] + 0.01 for r in rows if key in r)
            cells.append(
                f"{np.median(values):.3f} / {np.percentile(values, 90):.3f}"
                f" ({worse} worse)"
                if values
                else "-"
            )
        print(f"| {generator} | " + " | ".join(cells) + " |")
    print("\nmedian / 90th percentile of the abundance RMSE over the scenes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
