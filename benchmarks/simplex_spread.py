"""How far apart the endmembers found are, against how far apart the true ones are.

A diagnosis for the STEM-EELS gap (issue 21): on each development scene of
each generator, three fits are scored:

* ``auto``: the default (``init="auto"``);
* ``flat``: the featureless start (``init="flat"``);
* ``shrunk``: the default trained on (``warm_start``) for 20 more epochs with
  a minimum-volume penalty (``min_volume_weight=0.01``), which pulls the
  endmembers together until the fit resists;
* ``kmeans``: ``init="auto"`` with the k-means start as a fourth candidate
  (``benchmarks/ablation.py``'s "k-means start among the candidates").

Per fit: the angle to the truth (mean spectral angle after matching, rad),
the abundance RMSE (fractions on the reference scale, as
``benchmarks/family.py`` scores them), the spread ratio (median angle
between two endmembers found over the same for the true ones: above 1 the
simplex found is wider than the true one, below 1 narrower) and the misfit
in noise units (``residual_to_noise``: about 1 when only noise is left).
The first table gives the medians over scenes per generator, the second
one line per scene. Training is seeded (``random_state=0``).

Usage::

    python benchmarks/simplex_spread.py                 # 8 scenes each, ~8 min
    python benchmarks/simplex_spread.py --n-scenes 4 --generators stem_eels
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from family import GENERATORS

FITS = ("auto", "flat", "shrunk", "kmeans")
SCORES = ("angle", "rmse", "spread", "misfit")


def pairwise_spread(endmembers: np.ndarray) -> float:
    """Median angle (rad) between two distinct endmembers."""
    unit = endmembers / np.linalg.norm(endmembers, axis=1, keepdims=True)
    cosines = np.clip(unit @ unit.T, -1.0, 1.0)
    return float(np.median(np.arccos(cosines[np.triu_indices(len(unit), 1)])))


def _scores(model, spectra: np.ndarray, truth) -> dict:
    from hs_aeunmix import metrics

    order = metrics.match_endmembers(model.components_, truth.endmembers)
    fractions = metrics.fractions_on_reference_scale(
        model.components_, model.transform(spectra), truth.endmembers, order=order
    )
    return {
        "angle": metrics.mean_spectral_angle(
            model.components_, truth.endmembers, order=order
        ),
        "rmse": metrics.abundance_rmse(
            fractions, truth.abundances.reshape(-1, truth.n_endmembers)
        ),
        "spread": pairwise_spread(model.components_)
        / pairwise_spread(truth.endmembers),
        "misfit": model.residual_to_noise(spectra),
    }


def scene_row(task: tuple[str, int]) -> dict:
    """Scores of the three fits on one development scene."""
    import hyperspy.api as hs
    import torch

    from hs_aeunmix import AEUnmix, _initialisation, datasets

    # Two scenes run at once, one per core.
    torch.set_num_threads(1)
    hs.preferences.General.show_progressbar = False
    generator, index = task
    signal, truth, _ = getattr(datasets, GENERATORS[generator])(index)
    spectra = signal.data.reshape(-1, signal.data.shape[-1]).astype(np.float64)
    row = {"generator": generator, "index": index}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            init: AEUnmix(
                truth.n_endmembers, init=init, random_state=0, show_progressbar=False
            ).fit(spectra)
            for init in ("auto", "flat")
        }
        shrunk = copy.deepcopy(models["auto"])
        shrunk.set_params(warm_start=True, min_volume_weight=0.01, max_epochs=20)
        models["shrunk"] = shrunk.fit(spectra)
        starts = _initialisation.AUTO_STARTS
        _initialisation.AUTO_STARTS = (*starts, "kmeans")
        try:
            models["kmeans"] = AEUnmix(
                truth.n_endmembers, random_state=0, show_progressbar=False
            ).fit(spectra)
        finally:
            _initialisation.AUTO_STARTS = starts
    for fit, model in models.items():
        row.update({f"{fit} {k}": v for k, v in _scores(model, spectra, truth).items()})
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-scenes", type=int, default=8)
    parser.add_argument(
        "--generators", nargs="+", choices=tuple(GENERATORS), default=tuple(GENERATORS)
    )
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    tasks = [(g, i) for g in args.generators for i in range(args.n_scenes)]
    with multiprocessing.get_context("forkserver").Pool(args.jobs) as pool:
        rows = pool.map(scene_row, tasks)
    columns = [f"{fit} {score}" for fit in FITS for score in SCORES]
    header = "| generator | " + " | ".join(columns) + " |"
    rule = "| --- " * (len(columns) + 1) + "|"
    print(header.replace("| generator |", "| generator (median) |"))
    print(rule)
    for generator in args.generators:
        mine = [r for r in rows if r["generator"] == generator]
        medians = [float(np.median([r[c] for r in mine])) for c in columns]
        print(f"| {generator} | " + " | ".join(f"{m:.3f}" for m in medians) + " |")
    print()
    print(header.replace("| generator |", "| generator | scene |"))
    print(rule + " --- |")
    for r in rows:
        values = " | ".join(f"{r[c]:.3f}" for c in columns)
        print(f"| {r['generator']} | {r['index']} | {values} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
