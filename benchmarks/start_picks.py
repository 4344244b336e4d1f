"""Diagnosis: which pixels the vertex starts pick, and two corrections that fail.

For issue 21's STEM-EELS gap. On the development scenes of each generator,
SPA and VCA pick ``n`` pixels of the denoised spectra (as
``hs_aeunmix._initialisation`` does, without screening); per start the table
gives the start's mean spectral angle to the true endmembers, its spread
(median angle between two start endmembers over the same for the true ones)
and how many distinct phases the picked pixels hold (the phase of each
picked pixel is its largest true fraction; ``n`` of ``n`` when every pick
is a different phase). Two corrections are scored beside the start as the
package finds it:

* ``poisson``: the principal axes of the denoising computed on the spectra
  weighted for Poisson noise (each value divided by the square roots of its
  channel's and its pixel's means, as HyperSpy's
  ``normalize_poissonian_noise``), the picks mapped back;
* ``simex``: the picked vertices corrected for the noise's outward pull by
  simulation-extrapolation (Cook & Stefanski 1994): noise of the data's own
  level (Poisson for counts, each pixel's DER_SNR otherwise) is added once
  and twice over in the denoised coordinates, the picks repeated (4 draws
  each), and each vertex extrapolated linearly in the noise's standard
  deviation back to no noise.

Usage::

    python benchmarks/start_picks.py                  # 8 scenes each, ~1 min
    python benchmarks/start_picks.py --n-scenes 4 --generators stem_eels
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).parent))
from family import GENERATORS
from simplex_spread import pairwise_spread

CORRECTIONS = ("as found", "poisson", "simex")


def _pick(principal, scores: np.ndarray, method: str, n: int) -> np.ndarray:
    """Indices SPA or VCA picks among the denoised spectra of these scores."""
    from dataclasses import replace

    from hs_aeunmix._initialisation import Denoised, successive_projections
    from hs_aeunmix._vca import vertex_component_analysis

    denoised = Denoised(replace(principal, scores=scores))
    points = denoised.points()
    if method == "spa":
        return successive_projections(points, n, denoised.totals())
    rng = np.random.default_rng(0)
    return vertex_component_analysis(points, n, random_state=rng)[1]


def _subspace_noise(principal, spectra, counts: bool, scale: float) -> np.ndarray:
    """Cholesky factors (n_pixels, k, k) of each pixel's noise in the scores."""
    from hs_aeunmix._screening import der_snr_noise

    axes = principal.axes
    k, n_channels = axes.shape
    products = np.einsum("kc,lc->ckl", axes, axes).reshape(n_channels, k * k)
    if counts:
        denoised = principal.mean + principal.scores @ axes
        variance = np.maximum(denoised, 0.0) / scale
    else:
        variance = np.repeat(der_snr_noise(spectra)[:, None] ** 2, n_channels, 1)
    covariance = (variance @ products).reshape(-1, k, k) + 1e-12 * np.eye(k)
    return np.linalg.cholesky(covariance)


def _simex(principal, spectra, counts, scale, method, n) -> np.ndarray:
    scores = principal.scores
    found = scores[_pick(principal, scores, method, n)]
    factors = _subspace_noise(principal, spectra, counts, scale)
    rng = np.random.default_rng(1)
    levels, vertices = [1.0], [found]
    for extra in (1.0, 2.0):
        total = np.zeros_like(found)
        for _ in range(4):
            noise = np.einsum("nkl,nl->nk", factors, rng.standard_normal(scores.shape))
            noisy = scores + np.sqrt(extra) * noise
            picked = noisy[_pick(principal, noisy, method, n)]
            distance = ((found[:, None] - picked[None]) ** 2).sum(-1)
            total += picked[linear_sum_assignment(distance)[1]]
        levels.append(np.sqrt(1 + extra))
        vertices.append(total / 4)
    design = np.stack([np.ones(len(levels)), levels], axis=1)
    stacked = np.stack(vertices).reshape(len(levels), -1)
    extrapolated = np.linalg.lstsq(design, stacked, rcond=None)[0][0]
    return principal.mean + extrapolated.reshape(found.shape) @ principal.axes


def scene_rows(generator: str, index: int) -> list[dict]:
    from hs_aeunmix import datasets, metrics
    from hs_aeunmix._fitting import data_scale
    from hs_aeunmix._screening import is_count_data
    from hs_aeunmix._subspace import principal_axes

    signal, truth, _ = getattr(datasets, GENERATORS[generator])(index)
    raw = signal.data.reshape(-1, signal.data.shape[-1]).astype(np.float64)
    counts = is_count_data(raw)
    scale = data_scale([raw])
    spectra = raw / scale
    n = truth.n_endmembers
    phases = truth.abundances.reshape(-1, n).argmax(axis=1)
    plain = principal_axes(spectra, n)
    channel = 1 / np.sqrt(np.maximum(spectra.mean(0), 1e-12 * spectra.mean()))
    pixel = 1 / np.sqrt(np.maximum(spectra.mean(1), 1e-12 * spectra.mean()))
    weighted = principal_axes(spectra * channel * pixel[:, None], n)
    rows = []
    for method in ("spa", "vca"):
        picks = {
            "as found": _pick(plain, plain.scores, method, n),
            "poisson": _pick(weighted, weighted.scores, method, n),
        }
        starts = {
            "as found": plain.mean + plain.scores[picks["as found"]] @ plain.axes,
            "poisson": (
                weighted.mean + weighted.scores[picks["poisson"]] @ weighted.axes
            )
            / (channel * pixel[picks["poisson"], None]),
            "simex": _simex(plain, spectra, counts, scale, method, n),
        }
        row = {"generator": generator, "index": index, "method": method, "n": n}
        for correction, start in starts.items():
            start = np.clip(start, 0, None)
            order = metrics.match_endmembers(start, truth.endmembers)
            row[f"{correction} angle"] = metrics.mean_spectral_angle(
                start, truth.endmembers, order=order
            )
            row[f"{correction} spread"] = pairwise_spread(start) / pairwise_spread(
                truth.endmembers
            )
            if correction in picks:
                row[f"{correction} phases"] = len(set(phases[picks[correction]]))
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-scenes", type=int, default=8)
    parser.add_argument(
        "--generators", nargs="+", choices=tuple(GENERATORS), default=tuple(GENERATORS)
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    print(
        "| generator | scene | start | endmembers | angle / spread as found "
        "| phases picked | Poisson-weighted: angle / spread | phases picked "
        "| SIMEX: angle / spread |"
    )
    print("| --- " * 9 + "|")
    for generator in args.generators:
        for index in range(args.n_scenes):
            for r in scene_rows(generator, index):
                cells = [
                    r["generator"],
                    str(r["index"]),
                    r["method"].upper(),
                    str(r["n"]),
                    f"{r['as found angle']:.3f} / {r['as found spread']:.2f}",
                    f"{r['as found phases']} of {r['n']}",
                    f"{r['poisson angle']:.3f} / {r['poisson spread']:.2f}",
                    f"{r['poisson phases']} of {r['n']}",
                    f"{r['simex angle']:.3f} / {r['simex spread']:.2f}",
                ]
                print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
