"""Where the absent phase's fraction in a jointly unmixed series comes from.

For issue 22 (a phase absent from a scan should get a near-zero map). On
the series of ``benchmarks/joint.py`` (``datasets.eels_series``, Pt absent
from scans 4 and 8), with the scans' energy offsets as drawn and with none
(``max_offset=0``), prints for each scan without Pt the mean and median Pt
fraction of the joint model's maps and, without offsets (where a scan's
channels are the model's), the mean Pt fraction of a non-negative
least-squares fit of each pixel on the joint endmembers (the pixel's best
fit given them, without the encoder): if both agree, the
fraction is what the endmembers make of the data, not an encoder error; if
it stays without offsets, it is not the interpolation that aligns the
scans. A third draw trains on the noiseless spectra (no offsets): what is
left there is not the noise's doing but how closely the data determine the
endmembers of a series without pure pixels, where a small angle between
look-alike edges moves the fractions a lot. The last two columns fit the
pixels on the *true* endmembers: the floor of any pixel-by-pixel estimate
at the scans' dose (non-negativity turns noise into a positive fraction).

Usage::

    python benchmarks/absent_phase.py            # about a minute on 2 cores
    python benchmarks/absent_phase.py --seed 1   # another draw of the series
"""

from __future__ import annotations

import argparse
import warnings

import hyperspy.api as hs
import numpy as np

import hs_aeunmix
from hs_aeunmix import datasets, metrics
from hs_aeunmix._vca import nonnegative_least_squares


def rows(max_offset: float, seed: int, noiseless: bool = False) -> list[str]:
    """Table rows of the scans without Pt for one draw of the series."""
    signals, truths, _ = datasets.eels_series(
        10, (32, 32), max_offset=max_offset, random_state=seed
    )
    if noiseless:
        for signal, truth in zip(signals, truths, strict=True):
            signal.data = truth.noiseless.astype(np.float64)
    n = truths[0].n_endmembers
    fit = hs_aeunmix.decompose_series(
        [signal.deepcopy() for signal in signals], n, random_state=seed
    )
    channels = fit.model.signal_calibration_.trained_channels
    endmembers = fit.model.components_
    lines = []
    for index, (scan, truth) in enumerate(zip(fit.scans, truths, strict=True)):
        if truth.abundances[..., -1].max() > 0:
            continue
        reference = datasets.GroundTruth(
            truth.endmembers[:, channels], truth.abundances, truth.names, None
        )
        loadings = np.asarray(scan.signal.learning_results.loadings)[:, :n]
        scores = metrics.unmixing_scores(endmembers, loadings, reference)
        pt = scores["fractions"][:, -1]
        best = true = "- | -"
        if max_offset == 0:
            # Without offsets the scan's channels are the model's.
            spectra = np.asarray(signals[index].data, dtype=np.float64)
            spectra = spectra.reshape(-1, spectra.shape[-1])[:, channels]
            best = _least_squares_pt(spectra, endmembers, reference)
            true = _least_squares_pt(spectra, reference.endmembers, reference)
        lines.append(
            f"| {'noiseless' if noiseless else 'counts'} | {max_offset:g} | "
            f"{index + 1} | {scores['mean_sad_rad']:.4f} | {pt.mean():.3f} | "
            f"{np.median(pt):.3f} | {best} | {true} |"
        )
    return lines


def _least_squares_pt(spectra, endmembers, reference) -> str:
    """Mean and median Pt fraction of each pixel's least-squares fit on them."""
    least = nonnegative_least_squares(spectra, endmembers)
    pt = metrics.unmixing_scores(endmembers, least, reference)["fractions"][:, -1]
    return f"{pt.mean():.3f} | {np.median(pt):.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    hs.preferences.General.show_progressbar = False
    warnings.simplefilter("ignore")
    print(
        "| data | largest offset (channels) | scan | joint endmembers' angle | "
        "Pt fraction, joint maps: mean | median | least squares on the joint "
        "endmembers: mean | median | on the true endmembers: mean | median |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for max_offset, noiseless in ((3.0, False), (0.0, False), (0.0, True)):
        for line in rows(max_offset, args.seed, noiseless):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
