"""A sample series: the same specimen scanned several times, with a known truth.

Every scan of :func:`eels_series` mixes the same three EELS endmembers (Co,
Ni, Pt; the endmembers of :func:`eels_chequerboard`) with its own smooth
phase fractions, its own dose, and its own energy offset (acquisitions drift
between scans); one phase is absent from some scans. It is the test bed of
:func:`hs_aeunmix.decompose_series`: whether one model trained on the whole
series beats each scan trained alone, keeps endmember *k* the same phase in
every scan, and gives an absent phase a map of about zero.
"""

from __future__ import annotations

import numpy as np

from hs_aeunmix.datasets._common import (
    GroundTruth,
    RandomState,
    _check_integer,
    _check_shape,
    _normalise_rows,
    _smooth_random_field,
)
from hs_aeunmix.datasets._eels import _eels_endmembers, _eels_set, _eels_signal

# Counts per channel of the mean spectrum: log-uniform over this range, with
# every third scan at the low end (short dwell, beam-sensitive areas).
_DOSE_RANGE = (20.0, 400.0)
_LOW_DOSE = 2.0


def eels_series(
    n_scans: int = 10,
    shape: tuple[int, int] = (32, 32),
    *,
    max_offset: float = 3.0,
    absent_every: int = 4,
    random_state: RandomState = 0,
):
    """A series of STEM-EELS scans of one specimen, with their ground truths.

    Parameters
    ----------
    n_scans : int, default 10
        Number of scans.
    shape : tuple of int, default (32, 32)
        Scan size ``(ny, nx)`` of every scan.
    max_offset : float, default 3.0
        Largest energy offset of a scan relative to the first, in channels;
        each later scan's offset is drawn uniformly in
        ``[-max_offset, max_offset]`` (the first scan's is 0).
    absent_every : int, default 4
        The last phase (Pt) is absent from scans ``absent_every - 1``,
        ``2 * absent_every - 1``, ... (0 for none).
    random_state : int or numpy.random.Generator, optional
        Seed of every random draw.

    Returns
    -------
    signals : list of exspy.signals.EELSSpectrum
        The scans, all on the same energy axis (the first scan's).
    truths : list of GroundTruth
        Each scan's truth: endmembers (unshifted, in counts per unit
        fraction at that scan's dose), abundances and noiseless data.
    offsets : numpy.ndarray
        Each scan's energy offset in eV (positive: features appear at higher
        energy than in the first scan).
    """
    n_scans = _check_integer("n_scans", n_scans, 1)
    ny, nx = _check_shape(shape, 4)
    absent_every = _check_integer("absent_every", absent_every, 0)
    if max_offset < 0:
        raise ValueError(f"max_offset must be 0 or more channels, got {max_offset}.")
    rng = np.random.default_rng(random_state)
    endmember_set = _eels_set(3)
    unit = _eels_endmembers(endmember_set, 1.0)
    channels = np.arange(unit.shape[1], dtype=float)
    signals, truths, offsets = [], [], []
    for scan in range(n_scans):
        offset = 0.0 if scan == 0 else float(rng.uniform(-max_offset, max_offset))
        dose = (
            _LOW_DOSE
            if scan % 3 == 2
            else float(np.exp(rng.uniform(*np.log(_DOSE_RANGE))))
        )
        weights = np.stack(
            [
                np.exp(1.2 * _smooth_random_field(rng, (ny, nx), 4.0))
                for _ in range(len(unit))
            ],
            axis=-1,
        )
        if absent_every and scan % absent_every == absent_every - 1:
            weights[..., -1] = 0.0
        abundances = _normalise_rows(weights)
        endmembers = unit * dose
        # The scan's spectra appear `offset` channels higher on the axis.
        shifted = np.stack(
            [
                np.interp(channels - offset, channels, spectrum)
                for spectrum in endmembers
            ]
        )
        noiseless = abundances @ shifted
        data = rng.poisson(noiseless).astype(np.float64)
        signal = _eels_signal(
            data, endmember_set, f"Series scan {scan + 1} of {n_scans}"
        )
        signals.append(signal)
        truths.append(
            GroundTruth(
                endmembers=endmembers,
                abundances=abundances,
                names=tuple(m.name for m in endmember_set.materials),
                noiseless=noiseless,
            )
        )
        offsets.append(offset * endmember_set.energy_scale_ev)
    return signals, truths, np.array(offsets)
