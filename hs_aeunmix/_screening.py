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

from hs_aeunmix._device import map_in_threads

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
    spike_values : numpy.ndarray of int
        (n_spikes, 2): ``(pixel, channel)`` of each value replaced by the
        running median (a few, so listed rather than masked).
    n_channels : int
        Channels of the screened spectra.
    counts : bool
        Whether the spectra are counts (non-negative integers: Poisson
        noise), as :func:`is_count_data` says.
    """

    dead: np.ndarray
    spike_values: np.ndarray
    n_channels: int
    counts: bool = False

    @property
    def spikes(self) -> np.ndarray:
        """(n_pixels, n_channels) mask of the spike values (built on demand)."""
        mask = np.zeros((len(self.dead), self.n_channels), dtype=bool)
        mask[self.spike_values[:, 0], self.spike_values[:, 1]] = True
        return mask

    @property
    def n_dead(self) -> int:
        """Number of pixels without signal."""
        return int(self.dead.sum())

    @property
    def n_spikes(self) -> int:
        """Number of spike values."""
        return len(self.spike_values)

    @property
    def n_spike_pixels(self) -> int:
        """Number of pixels with at least one spike value."""
        return len(np.unique(self.spike_values[:, 0]))

    def summary(self) -> dict[str, int]:
        """Counts for reports and model files."""
        return {
            "dead_pixels": self.n_dead,
            "spike_values": self.n_spikes,
            "spike_pixels": self.n_spike_pixels,
        }

    def repair(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Replace the spike values in ``values``, in place, and return it.

        ``values`` holds the screened spectra ``rows`` (distinct pixel
        numbers), a copy of them: each spike value becomes the running
        median of its spectrum. Screening and repair are separate so that
        only the spectra training keeps are ever copied.
        """
        if not self.n_spikes:
            return values
        order = np.argsort(rows)
        found = np.searchsorted(rows, self.spike_values[:, 0], sorter=order)
        found = np.minimum(found, len(rows) - 1)
        present = rows[order[found]] == self.spike_values[:, 0]
        positions, channels = order[found[present]], self.spike_values[present, 1]
        if len(positions):
            repaired = np.unique(positions)
            smooth = _smooth(values[repaired])
            values[positions, channels] = smooth[
                np.searchsorted(repaired, positions), channels
            ]
        return values


def is_count_data(spectra: np.ndarray) -> bool:
    """Whether the spectra look like counts: non-negative integers."""
    return all(
        bool(np.all(block >= 0) and np.all(block == np.round(block)))
        for block in _blocks(spectra)
    )


# Spectra screened at once: bounds the temporary arrays of a large sample.
_BLOCK_ROWS = 1024


def _blocks(spectra: np.ndarray):
    for start in range(0, len(spectra), _BLOCK_ROWS):
        yield spectra[start : start + _BLOCK_ROWS]


# Compare-exchanges of a median-of-seven selection network (Paeth's,
# Graphics Gems): the running median is then 26 elementwise minima and maxima
# over contiguous arrays, several times faster than a generic median filter
# and exactly equal to it (a median picks one of the values).
_MEDIAN_OF_SEVEN = (
    (0, 5), (0, 3), (1, 6), (2, 4), (0, 1), (3, 5), (2, 6),
    (2, 3), (3, 6), (4, 5), (1, 4), (1, 3), (3, 4),
)  # fmt: skip
# Rows handled at once by the selection network: its eight temporaries stay
# in the processor's cache.
_MEDIAN_ROWS = 64


def _smooth(spectra: np.ndarray) -> np.ndarray:
    """Running median along the channels: what a spike is measured against.

    A window of :data:`SPIKE_WIDTH` channels, the edge values repeated
    beyond the ends (``scipy.ndimage.median_filter(..., mode="nearest")``).
    """
    half = SPIKE_WIDTH // 2
    n_channels = spectra.shape[1]
    result = np.empty_like(spectra)
    for start in range(0, len(spectra), _MEDIAN_ROWS):
        padded = np.pad(
            spectra[start : start + _MEDIAN_ROWS], ((0, 0), (half, half)), mode="edge"
        )
        # Copies, not views: the network overwrites them (a view of a single
        # padded row would alias its neighbours).
        window = [
            padded[:, shift : shift + n_channels].copy() for shift in range(SPIKE_WIDTH)
        ]
        spare = np.empty_like(window[0])
        for low, high in _MEDIAN_OF_SEVEN:
            np.minimum(window[low], window[high], out=spare)
            np.maximum(window[low], window[high], out=window[high])
            window[low], spare = spare, window[low]
        result[start : start + _MEDIAN_ROWS] = window[half]
    return result


def row_medians(values: np.ndarray) -> np.ndarray:
    """``np.median(values, axis=1)``, the same numbers several times faster.

    One selection of the upper middle value, the lower one being the
    largest below it: numpy's median selects both middle values at once,
    which takes about five times as long on a block of spectra.
    """
    half = values.shape[1] // 2
    selected = np.partition(values, half, axis=1)
    upper = selected[:, half]
    if values.shape[1] % 2:
        return upper
    lower = selected[:, :half].max(axis=1)
    # The mean of the pair, as np.median computes it.
    return np.mean(np.stack([lower, upper]), axis=0)


def der_snr_noise(spectra: np.ndarray) -> np.ndarray:
    """Each spectrum's noise standard deviation (DER_SNR, Stoehr et al. 2008)."""
    second = 2.0 * spectra[:, 2:-2] - spectra[:, :-4] - spectra[:, 4:]
    return 1.482602 / np.sqrt(6.0) * row_medians(np.abs(second, out=second))


def white_noise(spectra: np.ndarray) -> np.ndarray:
    """Each spectrum's noise standard deviation, for weighting a fit by it.

    DER_SNR (the standard deviation on spectra too short for it), at least
    a millionth of the spectrum's largest value: noiseless spectra
    (simulations) would otherwise get infinite weights.
    """
    noise = der_snr_noise(spectra) if spectra.shape[1] > 4 else spectra.std(axis=1)
    return np.maximum(noise, 1e-6 * np.abs(spectra).max(axis=1) + 1e-30)


def white_noise_variance(spectra: np.ndarray) -> np.ndarray:
    """Each channel's noise variance under white noise: :func:`white_noise` squared.

    A read-only view of shape ``spectra.shape`` (each spectrum's variance
    repeated along its channels).
    """
    return np.broadcast_to(white_noise(spectra)[:, None] ** 2, spectra.shape)


def screen(spectra: np.ndarray) -> Screening:
    """Find the pixels without signal and the spike values of ``spectra``.

    Parameters
    ----------
    spectra : numpy.ndarray
        (n_pixels, n_channels), finite; not changed (see
        :meth:`Screening.repair`).

    Returns
    -------
    Screening
    """
    totals = spectra.sum(axis=1)
    positive = totals[totals > 0]
    reference = float(np.median(positive)) if positive.size else 0.0
    dead = totals <= DEAD_FRACTION * reference
    no_spikes = np.empty((0, 2), dtype=np.intp)
    counts = is_count_data(spectra)
    if spectra.shape[1] < SPIKE_WIDTH:
        return Screening(dead, no_spikes, spectra.shape[1], counts)
    floor = 1e-12 * max(float(spectra.max()), -float(spectra.min()), 1e-30)

    def judge(start: int) -> tuple[np.ndarray, np.ndarray]:
        """The spikes of a block of rows, and its count per channel of values
        standing out."""
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
        spikes = (excess > SPIKE_THRESHOLD * sigma) & (excess > 0.5 * peak) & alive
        standing_out = ((excess > SHARED_SIGMA * sigma) & alive).sum(axis=0)
        return np.argwhere(spikes) + np.array([start, 0]), standing_out

    # Block by block (each row is judged on its own), so that a large sample
    # needs a few blocks of temporaries, not several copies of itself; the
    # blocks on the CPU's cores at once.
    judged = map_in_threads(judge, range(0, len(spectra), _BLOCK_ROWS))
    found = [no_spikes, *(spikes for spikes, _ in judged)]
    standing_out = sum(
        (counted for _, counted in judged), np.zeros(spectra.shape[1], np.int64)
    )
    shared = standing_out > max(3, SHARED_FRACTION * len(spectra))
    # A narrow band wanders by a channel between pixels (drift).
    shared = shared | np.roll(shared, 1) | np.roll(shared, -1)
    spike_values = np.concatenate(found)
    return Screening(
        dead, spike_values[~shared[spike_values[:, 1]]], spectra.shape[1], counts
    )
