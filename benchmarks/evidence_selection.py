"""Diagnosis: choosing the start by Bayesian evidence instead of SURE (issue 21).

The held-out risk (``hs_aeunmix._risk.held_out_risks``, Stein's
unbiased estimate of the reconstruction error) rewards a simplex whose
non-negative fits clip to zero, so on scenes without pure pixels it can
prefer a shrunken simplex (``benchmarks/averaged_starts.py --risks family
5``). The evidence of the endmembers, the likelihood with each pixel's
intensities integrated over a flat prior on non-negative values, punishes
both ways: a larger simplex through the prior's volume (the Gaussian's
normaliser, ``log det(D^T D)``) and a smaller one through the probability
mass that falls outside the non-negative orthant. Per held-out spectrum, in
its noise units (as the risk), with unit-sum endmembers::

    deviance = chi2 of the unconstrained least squares + log det(D^T D)
               - 2 log P(b >= 0),  b ~ N(least squares, (D^T D)^-1)

(the probability by 512 Gaussian draws; background terms are not modelled,
so scenes with a background model are not judged fairly). For each
development scene and each candidate the default trains (its three starts
and the same on 3 x 3-averaged spectra, as ``averaged_starts.py``'s
``six``), this prints the candidates' angles to the truth when the choice is
made, the start SURE's rule keeps and the one of lowest mean deviance, and
how often the evidence's choice is better or worse by more than 0.01 rad.
Development scenes only; not a default.

Usage::

    python benchmarks/evidence_selection.py --jobs 2     # ~4 minutes
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

sys.path.insert(0, str(Path(__file__).parent))
import family
from averaged_starts import _averaged_starts

DRAWS = 512
PIXELS = 512


def deviances(
    endmembers: np.ndarray, spectra: np.ndarray, counts_scale: float | None
) -> np.ndarray:
    """Minus twice the log evidence of each spectrum (up to a constant)."""
    from hs_aeunmix._screening import white_noise

    unit = np.asarray(endmembers, dtype=np.float64)
    unit = unit / np.maximum(unit.sum(axis=1, keepdims=True), 1e-30)
    spectra = np.asarray(spectra, dtype=np.float64)
    if counts_scale is not None:
        expected = gaussian_filter1d(spectra, 2.0, axis=1)
        variance = np.maximum(expected, 1.0 / counts_scale) / counts_scale
    else:
        variance = np.broadcast_to(white_noise(spectra)[:, None] ** 2, spectra.shape)
    rng = np.random.default_rng(0)
    result = np.empty(len(spectra))
    for row, (spectrum, channel_variance) in enumerate(
        zip(spectra, variance, strict=True)
    ):
        weights = 1.0 / np.sqrt(channel_variance)
        design, target = unit.T * weights[:, None], spectrum * weights
        gram = design.T @ design
        try:
            cholesky = np.linalg.cholesky(gram)
        except np.linalg.LinAlgError:
            result[row] = np.inf
            continue
        least = np.linalg.solve(gram, design.T @ target)
        chi2 = float(np.sum((target - design @ least) ** 2))
        draws = (
            least
            + np.linalg.solve(cholesky.T, rng.standard_normal((len(unit), DRAWS))).T
        )
        inside = (np.sum(np.all(draws >= 0, axis=1)) + 0.5) / (DRAWS + 1)
        log_det = 2.0 * np.sum(np.log(np.diag(cholesky)))
        result[row] = chi2 + log_det - 2.0 * np.log(inside)
    return result


def run_one(task: tuple[str, int]) -> dict:
    """Every candidate of one development scene: angle, SURE's choice, deviance."""
    import torch

    torch.set_num_threads(1)
    from hs_aeunmix import _fitting, datasets, metrics

    generator, index = task
    signal, truth, _ = getattr(datasets, family.GENERATORS[generator])(
        index, "development"
    )
    # Keyed by network: a start equal to an earlier one shares its network.
    scored: dict[int, dict] = {}
    ordered: list[dict] = []
    held_out_risk = _fitting.held_out_risk

    def recorded(prepared, basis):
        risks = held_out_risk(prepared, basis)
        spectra = prepared.validation if len(prepared.validation) else prepared.train
        spectra = spectra[:: max(1, len(spectra) // PIXELS)]

        # Training judges its epochs too: a candidate's last call is its own.
        def judged(module):
            losses = risks(module)
            endmembers = module.decoder.endmembers.detach().cpu().numpy()
            comparable = endmembers.shape[1] == truth.endmembers.shape[1]
            scored[id(module)] = {
                "angle": float(
                    metrics.mean_spectral_angle(endmembers, truth.endmembers)
                )
                if comparable
                else float("nan"),
                "deviance": float(
                    deviances(
                        endmembers,
                        spectra,
                        prepared.data_scale if prepared.screening.counts else None,
                    ).mean()
                ),
            }
            return losses

        return judged

    def chosen(candidates, _):
        ordered.extend(scored[id(candidate.module)] for candidate in candidates)

    _fitting.held_out_risk = recorded
    try:
        with _averaged_starts(signal, "six", chosen):
            *_, model = family.default_fit(generator, index, "development")
    finally:
        _fitting.held_out_risk = held_out_risk
    candidates = ordered
    report = model.stability_
    return {
        "generator": generator,
        "index": index,
        "background": bool(len(model.baseline_components_)),
        "starts": list(report.starts),
        "kept": int(report.chosen),
        "candidates": candidates,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-scenes", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    tasks = [(g, i) for g in family.GENERATORS for i in range(args.n_scenes)]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        records = sorted(
            pool.imap_unordered(run_one, tasks),
            key=lambda r: (r["generator"], r["index"]),
        )
    print(
        "| generator | scene | background | candidates' angles (rad) "
        "| SURE keeps | lowest deviance |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    tally = {generator: [0, 0, 0] for generator in family.GENERATORS}
    for r in records:
        angles = [c["angle"] for c in r["candidates"]]
        lowest = int(np.argmin([c["deviance"] for c in r["candidates"]]))
        kept = r["kept"]
        listed = ", ".join(
            f"{start} {angle:.3f}"
            for start, angle in zip(r["starts"], angles, strict=True)
        )
        print(
            f"| {r['generator']} | {r['index']} | {'yes' if r['background'] else 'no'}"
            f" | {listed} | {r['starts'][kept]} {angles[kept]:.3f} "
            f"| {r['starts'][lowest]} {angles[lowest]:.3f} |"
        )
        difference = angles[lowest] - angles[kept]
        tally[r["generator"]][
            0 if difference < -0.01 else 2 if difference > 0.01 else 1
        ] += 1
    print("\n| generator | evidence better / same / worse (by 0.01 rad) |")
    print("| --- | --- |")
    for generator, (better, same, worse) in tally.items():
        print(f"| {generator} | {better} / {same} / {worse} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
