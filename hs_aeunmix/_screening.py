"""Spectra that must not shape the endmembers: dead pixels and spikes.

Real scans carry artefacts outside the mixing model. Two kinds would
otherwise take an endmember of their own or pull every endmember towards
them, because a least-squares fit weighs an outlier by the square of its
size:

* **pixels without signal** (dead detector pixels, vacuum, a blanked beam):
  total intensity at most :data:`DEAD_FRACTION` of the median pixel's. They
  carry no information about the endmembers and, being extreme, would be
  picked as vertices by pure-pixel starts. They are left out of training and
  still receive abundances (an intensity of about zero).
* **spikes** (cosmic rays on a Raman CCD, X-ray hits on an EELS camera): a
  value far above the same pixel's spectrum smoothed by a running median
  over :data:`SPIKE_WIDTH` channels, by more than :data:`SPIKE_THRESHOLD`
  noise standard deviations *and* by more than half of the pixel's highest
  smoothed value, in a channel where few other pixels stand out at all. A
  real narrow band (a sharp Raman line, an EELS white line) rises above the
  running median in every pixel that holds the compound, by
  :data:`SHARED_SIGMA` standard deviations or more, and noise lifts some of
  those pixels past the spike threshold; a spike is a rare event. For
  training, flagged values are replaced by the smoothed value. The noise is
  Poisson (standard deviation the square root of the smoothed value, at
  least one count) for count data (non-negative integers), else each
  pixel's, estimated from its second differences as in DER_SNR (Stoehr et
  al., ASP Conf. Ser. 394, 2008), which smooth spectra do not bias.

The thresholds are statistical conventions, not fitted to data: eight
standard deviations is far beyond any noise value in a million-pixel scan,
and noise lifts about one value in a thousand above four (the excess over a
running median is a little wider than the noise), so a channel where more
than one pixel in a hundred does holds a feature. The counts are reported
on the fitted model (``screening_``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

# A pixel whose total intensity is at most this fraction of the median
# pixel's holds no signal.
DEAD_FRACTION = 1e-3
# Spikes span one to three channels: a running median over seven channels
# does not see them.
SPIKE_WIDTH = 7
SPIKE_THRESHOLD = 8.0
# A channel where more pixels than this share (at least 3) exceed the
# running median by SHARED_SIGMA standard deviations holds a real narrow
# feature, not spikes.
SHARED_FRACTION = 0.01
SHARED_SIGMA = 4.0


@dataclass(frozen=True)
class Screening:
    """Which spectra and values training leaves out or repairs.

    Attributes
    ----------
    dead : numpy.ndarray of bool
        (n_pixels,): pixels without signal, left out of training.
    spikes : numpy.ndarray of bool
        (n_pixels, n_channels): values replaced by the running median.
    """

    dead: np.ndarray
    spikes: np.ndarray

    @property
    def n_dead(self) -> int:
        """Number of pixels without signal."""
        return int(self.dead.sum())

    @property
    def n_spikes(self) -> int:
        """Number of spike values."""
        return int(self.spikes.sum())

    @property
    def n_spike_pixels(self) -> int:
        """Number of pixels with at least one spike value."""
        return int(self.spikes.any(axis=1).sum())

    def summary(self) -> dict[str, int]:
        """Counts for reports and model files."""
        return {
            "dead_pixels": self.n_dead,
            "spike_values": self.n_spikes,
            "spike_pixels": self.n_spike_pixels,
        }


def is_count_data(spectra: np.ndarray) -> bool:
    """Whether the spectra look like counts: non-negative integers."""
    return all(
        bool(np.all(block >= 0) and np.all(block == np.round(block)))
        for block in _blocks(spectra)
    )


# Spectra screened at once: bounds the temporary arrays of a large sample.
_BLOCK_ROWS = 4096


def _blocks(spectra: np.ndarray):
    for start in range(0, len(spectra), _BLOCK_ROWS):
        yield spectra[start : start + _BLOCK_ROWS]


def _smooth(spectra: np.ndarray) -> np.ndarray:
    """Running median along the channels: what a spike is measured against."""
    return median_filter(spectra, size=(1, SPIKE_WIDTH), mode="nearest")


def der_snr_noise(spectra: np.ndarray) -> np.ndarray:
    """Each spectrum's noise standard deviation (DER_SNR, Stoehr et al. 2008)."""
    second = 2.0 * spectra[:, 2:-2] - spectra[:, :-4] - spectra[:, 4:]
    return 1.482602 / np.sqrt(6.0) * np.median(np.abs(second), axis=1)


def screen(spectra: np.ndarray) -> tuple[np.ndarray, Screening]:
    """Spectra repaired for training, and what was found.

    Parameters
    ----------
    spectra : numpy.ndarray
        (n_pixels, n_channels), finite.

    Returns
    -------
    repaired : numpy.ndarray
        ``spectra`` with spike values replaced (a new array when any was
        found, else ``spectra`` itself).
    screening : Screening
    """
    totals = spectra.sum(axis=1)
    positive = totals[totals > 0]
    reference = float(np.median(positive)) if positive.size else 0.0
    dead = totals <= DEAD_FRACTION * reference
    spikes = np.zeros(spectra.shape, dtype=bool)
    if spectra.shape[1] < SPIKE_WIDTH:
        return spectra, Screening(dead=dead, spikes=spikes)
    counts = is_count_data(spectra)
    floor = 1e-12 * max(float(spectra.max()), -float(spectra.min()), 1e-30)
    standing_out = np.zeros(spectra.shape[1], dtype=np.int64)
    # Block by block (each row is judged on its own), so that a large sample
    # needs a few blocks of temporaries, not several copies of itself.
    for start in range(0, len(spectra), _BLOCK_ROWS):
        rows = slice(start, start + _BLOCK_ROWS)
        block = spectra[rows]
        smooth = _smooth(block)
        excess = block - smooth
        if counts:
            sigma = np.sqrt(np.maximum(smooth, 1.0))
        else:
            sigma = np.maximum(der_snr_noise(block)[:, None], floor)
        peak = np.abs(smooth).max(axis=1, keepdims=True)
        alive = ~dead[rows, None]
        spikes[rows] = (
            (excess > SPIKE_THRESHOLD * sigma) & (excess > 0.5 * peak) & alive
        )
        standing_out += ((excess > SHARED_SIGMA * sigma) & alive).sum(axis=0)
    shared = standing_out > max(3, SHARED_FRACTION * len(spectra))
    # A narrow band wanders by a channel between pixels (drift).
    shared = shared | np.roll(shared, 1) | np.roll(shared, -1)
    spikes &= ~shared[None, :]
    if spikes.any():
        repaired = spectra.copy()
        rows = np.flatnonzero(spikes.any(axis=1))
        for start in range(0, len(rows), _BLOCK_ROWS):
            chosen = rows[start : start + _BLOCK_ROWS]
            repaired[chosen] = np.where(
                spikes[chosen], _smooth(spectra[chosen]), spectra[chosen]
            )
        spectra = repaired
    return spectra, Screening(dead=dead, spikes=spikes)
