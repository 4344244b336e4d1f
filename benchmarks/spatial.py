"""Benchmark: ``spatial=True`` against the per-pixel model, and where it helps.

For each case and seed, trains the default per-pixel model and the spatial
one (same seed, so the endmembers are the same) and prints a markdown table:
abundance RMSE of both, and of least squares on the true endmembers (the
per-pixel noise floor); the RMSE on pixels at a boundary of the true maps
(a true abundance differs by more than 0.01 from a 4-neighbour's) and inside
regions; the gradient energy of the maps (Jensen et al.; the truth's for
comparison: a map smoother than the truth is blurred); training seconds.

Usage::

    python benchmarks/spatial.py                 # every case, 2 seeds
    python benchmarks/spatial.py --cases eels_dose20 --seeds 1
    python benchmarks/spatial.py --spatial-weight 4   # a weaker prior
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import hyperspy.api as hs
import numpy as np

from hs_aeunmix import AEUnmix, datasets, metrics
from hs_aeunmix._vca import fully_constrained_least_squares

CASES = {
    "eels_dose20": lambda seed: datasets.eels_chequerboard(
        3, dose=20, random_state=seed
    ),
    "eels_dose50": lambda seed: datasets.eels_chequerboard(
        3, dose=50, random_state=seed
    ),
    "eels_dose200": lambda seed: datasets.eels_chequerboard(
        3, dose=200, random_state=seed
    ),
    "eels_fine_blocks": lambda seed: datasets.eels_chequerboard(
        3, block_size=4, filter_size=3, dose=50, random_state=seed
    ),
    "raman_snr5": lambda seed: datasets.raman_scene(
        4, scene="chessboard", snr=5, random_state=seed
    ),
    "raman_cell_snr20": lambda seed: datasets.raman_scene(
        4, scene="cell", random_state=seed
    ),
}


def _boundary(maps: np.ndarray) -> np.ndarray:
    """Pixels whose true abundances differ from a 4-neighbour's by > 0.01."""
    edge = np.zeros(maps.shape[:2], dtype=bool)
    for axis in (0, 1):
        jump = np.abs(np.diff(maps, axis=axis)).max(axis=-1) > 0.01
        if axis == 0:
            edge[:-1] |= jump
            edge[1:] |= jump
        else:
            edge[:, :-1] |= jump
            edge[:, 1:] |= jump
    return edge


def _scores(model, abundances, truth, boundary):
    n = truth.n_endmembers
    scores = metrics.unmixing_scores(model.components_, abundances, truth)
    fractions = scores["fractions"]
    reference = truth.abundances.reshape(-1, n)
    flat = boundary.ravel()
    return {
        "rmse": scores["abundance_rmse"],
        "edge": metrics.abundance_rmse(fractions[flat], reference[flat]),
        "inside": metrics.abundance_rmse(fractions[~flat], reference[~flat]),
        "gradient": metrics.gradient_energy(fractions.reshape(*boundary.shape, n)),
    }


def run_case(name: str, seed: int, spatial_weight: float) -> dict:
    signal, truth = CASES[name](seed)
    shape = signal.data.shape[:-1]
    spectra = signal.data.reshape(-1, signal.data.shape[-1])
    boundary = _boundary(truth.abundances)
    results = {}
    spatial = {"spatial": True, "spatial_weight": spatial_weight}
    for label, options in (("pixel", {}), ("spatial", spatial)):
        start = time.perf_counter()
        model = AEUnmix(
            truth.n_endmembers, random_state=seed, show_progressbar=False, **options
        )
        abundances = model.fit_transform(spectra, image_shape=shape)
        results[label] = {
            **_scores(model, abundances, truth, boundary),
            "seconds": time.perf_counter() - start,
        }
    floor = fully_constrained_least_squares(spectra, truth.endmembers)
    results["floor"] = metrics.abundance_rmse(
        floor, truth.abundances.reshape(-1, truth.n_endmembers)
    )
    results["truth_gradient"] = metrics.gradient_energy(truth.abundances)
    return results


def _mean(values) -> str:
    return f"{statistics.fmean(values):.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument(
        "--spatial-weight",
        type=float,
        default=AEUnmix().spatial_weight,
        help="prior strength of the spatial model (default: the package's)",
    )
    args = parser.parse_args(argv)
    hs.preferences.General.show_progressbar = False
    print(
        f"Mean over {args.seeds} seeds, spatial_weight={args.spatial_weight:g}. "
        "RMSE of fractional abundances; boundary pixels: a true abundance "
        "differs by more than 0.01 from a neighbour's.\n"
    )
    print(
        "| case | RMSE per pixel | RMSE spatial | change | floor (true endmembers) "
        "| boundary: pixel / spatial | inside: pixel / spatial "
        "| gradient energy: pixel / spatial / truth | training s: pixel / spatial |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Raman negative values
            runs = [
                run_case(name, seed, args.spatial_weight) for seed in range(args.seeds)
            ]
        pixel = [run["pixel"] for run in runs]
        spatial = [run["spatial"] for run in runs]
        change = statistics.fmean(
            s["rmse"] / p["rmse"] - 1 for p, s in zip(pixel, spatial, strict=True)
        )
        print(
            f"| {name} | {_mean(p['rmse'] for p in pixel)} "
            f"| {_mean(s['rmse'] for s in spatial)} | {change:+.1%} "
            f"| {_mean(run['floor'] for run in runs)} "
            f"| {_mean(p['edge'] for p in pixel)} / "
            f"{_mean(s['edge'] for s in spatial)} "
            f"| {_mean(p['inside'] for p in pixel)} / "
            f"{_mean(s['inside'] for s in spatial)} "
            f"| {_mean(p['gradient'] for p in pixel)} / "
            f"{_mean(s['gradient'] for s in spatial)} / "
            f"{_mean(run['truth_gradient'] for run in runs)} "
            f"| {statistics.fmean(p['seconds'] for p in pixel):.1f} / "
            f"{statistics.fmean(s['seconds'] for s in spatial):.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
