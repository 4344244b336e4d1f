"""Jointly unmixed series: what a minimum-volume term does to the absent phase.

For issue 22 (a phase absent from a scan should get a near-zero map). The
series' scans have no pure pixels, so the joint simplex is free to open up a
little beyond the data wherever that costs no fit; a corner that drifts off
the face the absent-phase scans lie on is then compensated by the absent
phase in those scans. A minimum-volume term (``min_volume_weight``) pulls the
simplex in towards the data; ``decompose_series`` trains a new model with
``hs_aeunmix._joint.SERIES_MIN_VOLUME_WEIGHT`` (chosen here, see
``results/joint_volume.md``). This prints, per series, seed and weight, the
mean fraction of the absent phase in the scans without it, the mean spectral
angle of the joint endmembers and the mean abundance RMSE over the scans.

Two series sources, written independently of each other:

* ``eels_series``: :func:`hs_aeunmix.datasets.eels_series` (10 scans of
  32 x 32, smooth random maps without pure pixels, 0-3 channels of offset,
  every third scan at low dose, Pt absent from scans 4 and 8);
* ``stem_eels``: the endmembers of one scene of the independent STEM-EELS
  generator (:func:`hs_aeunmix.datasets.stem_eels_scene`, eXSpy's GOS edges
  on power-law backgrounds, 3 phases) mixed by the abundance maps of ten
  other scenes of that generator (interfaces, precipitates, grains,
  gradients; with or without pure pixels, as drawn), a dose per scan
  log-uniform on [1000, 30000] counts (every third scan 300), Poisson noise,
  no offsets (and none looked for: ``max_offset=0``, since the scans' very
  different compositions make their mean spectra poor references for
  aligning them); the last phase removed from scans 4 and 8 (its fraction
  given to the others in proportion).

Usage::

    python benchmarks/joint_volume.py                   # about 12 minutes on 2 cores
    python benchmarks/joint_volume.py --sources stem_eels --weights 0 0.01
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import hyperspy.api as hs
import numpy as np

import hs_aeunmix
from hs_aeunmix import datasets

sys.path.insert(0, str(Path(__file__).parent))
import joint  # a series fit's scores on the model's channels

N_SCANS = 10
SHAPE = (32, 32)
ABSENT_SCANS = (3, 7)  # scans 4 and 8, counted from 1
LOW_DOSE = 300.0
DOSE_RANGE = (1000.0, 30000.0)


def _mixed_series(scene, base_index: int, seed: int, **fixed):
    """Ten scans of one specimen of an independent generator.

    ``scene`` is the generator; scene ``base_index`` gives the endmembers,
    ten further scenes (with ``fixed`` overrides) the abundance maps.
    """
    rng = np.random.default_rng(seed)
    overrides = {"n_endmembers": 3, "shape": SHAPE}
    base, base_truth, _ = scene(base_index, **overrides, **fixed)
    unit = base_truth.endmembers / base_truth.endmembers.sum(axis=1).mean()
    signals, truths = [], []
    for scan in range(N_SCANS):
        _, truth, _ = scene(base_index * 100 + scan + 1, **overrides)
        abundances = truth.abundances.copy()
        if scan in ABSENT_SCANS:
            abundances[..., -1] = 0.0
            totals = abundances.sum(axis=-1, keepdims=True)
            # A pixel that held only the removed phase gets the others evenly.
            evenly = 1.0 / (abundances.shape[-1] - 1)
            abundances = np.where(
                totals > 0, abundances / np.where(totals > 0, totals, 1.0), evenly
            )
            abundances[..., -1] = 0.0
        dose = (
            LOW_DOSE
            if scan % 3 == 2
            else float(np.exp(rng.uniform(*np.log(DOSE_RANGE))))
        )
        endmembers = unit * dose
        noiseless = abundances @ endmembers
        signal = base.deepcopy()
        signal.data = rng.poisson(noiseless).astype(np.float64)
        signal.metadata.General.title = f"Series scan {scan + 1}"
        signals.append(signal)
        truths.append(
            datasets.GroundTruth(endmembers, abundances, base_truth.names, noiseless)
        )
    return signals, truths


def eels_series(seed: int):
    signals, truths, _ = datasets.eels_series(N_SCANS, SHAPE, random_state=seed)
    return signals, truths


def _mixed(scene, **fixed):
    """A series source from ``scene``'s generator, with ``fixed`` overrides."""
    return lambda seed: _mixed_series(scene, 1000 + seed, seed, **fixed)


SOURCES = {
    "eels_series": eels_series,
    "stem_eels": _mixed(
        datasets.stem_eels_scene,
        artefacts=False,
        drift_channels=0.0,
        thickness_variation=0.0,
    ),
    "raman": _mixed(
        datasets.raman_compound_scene,
        fluorescence=False,
        cosmic_rays=False,
        hot_pixels=False,
        shift_channels=0.0,
    ),
}
# Largest offset looked for (channels), per source.
MAX_OFFSET = {"eels_series": 5.0, "stem_eels": 0.0, "raman": 0.0}


def scores(
    signals, truths, weight: float, seed: int, max_offset: float
) -> tuple[float, float, float]:
    """Absent-phase fraction, mean angle and mean RMSE of a joint fit."""
    n = truths[0].endmembers.shape[0]
    fit = hs_aeunmix.decompose_series(
        [signal.deepcopy() for signal in signals],
        n,
        random_state=seed,
        max_offset=max_offset,
        min_volume_weight=weight,
    )
    channels = fit.model.signal_calibration_.trained_channels
    endmembers = fit.model.components_
    leaks, angles, rmses = [], [], []
    for scan, truth in zip(fit.scans, truths, strict=True):
        loadings = np.asarray(scan.signal.learning_results.loadings)[:, :n]
        result = joint._scores(endmembers, loadings, truth, channels)
        angles.append(result["mean_sad_rad"])
        rmses.append(result["abundance_rmse"])
        if truth.abundances[..., -1].max() == 0:
            leaks.append(result["fractions"][:, -1].mean())
    return float(np.mean(leaks)), float(np.mean(angles)), float(np.mean(rmses))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", nargs="+", choices=SOURCES, default=list(SOURCES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--weights", nargs="+", type=float, default=[0.0, 0.003, 0.005, 0.01, 0.03]
    )
    args = parser.parse_args(argv)
    hs.preferences.General.show_progressbar = False
    warnings.simplefilter("ignore")
    print("| series | seed | min_volume_weight | absent phase | angle | RMSE |")
    print("| --- | --- | --- | --- | --- | --- |", flush=True)
    for source in args.sources:
        for seed in args.seeds:
            signals, truths = SOURCES[source](seed)
            for weight in args.weights:
                leak, angle, rmse = scores(
                    signals, truths, weight, seed, MAX_OFFSET[source]
                )
                print(
                    f"| {source} | {seed} | {weight:g} | {leak:.3f} | "
                    f"{angle:.4f} | {rmse:.3f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
