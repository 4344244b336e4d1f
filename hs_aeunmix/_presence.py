"""Which of a series' phases each scan holds: a decision per scan and endmember.

Trained jointly, a phase absent from a scan keeps a small map there (see
:mod:`hs_aeunmix._joint`): without pure pixels the data fix the endmembers
only so closely, and at low counts no pixel-by-pixel estimate reaches zero in
the mean. A map near zero needs a decision taken on the whole scan: this
module measures how much of each phase a scan's spectra need, and calls a
phase absent from a scan where the scan needs clearly less of it than the
series' scans typically hold.

**How much of a phase a scan needs** (:func:`phase_levels`). On a sample of
the scan's spectra (at most :data:`PRESENCE_PIXELS`), each pixel is fitted by
non-negative least squares on the endmembers (and the background's basis
functions, of either sign), once with all of them and once without each
endmember in turn. Leaving endmember *k* out raises the pixel's chi-square;
the noise is Poisson for counts (the variance is the fitted spectrum) and
each pixel's DER_SNR level otherwise, and is rescaled so that the full fit's
chi-square per degree of freedom is one (a camera's gain, a wrong noise
level). Under noise alone a needless coefficient costs half a unit on
average (zero where the fit would make it negative, chi-square with one
degree of freedom otherwise); a phase present at a fraction *f* of a pixel's
signal costs ``f² m`` more, where ``m`` is the chi-square of that pixel's
signal, were it all phase *k*, that the other endmembers cannot reproduce
(the part of the whitened endmember outside the others' span). The scan's
**level** of phase *k* is ``sqrt((mean increase - 1/2) / mean m)``: the
root-mean-square fraction of the signal the phase accounts for (each pixel
weighted by how clearly it would show the phase, so a little below the
plain RMS where the phase is abundant: 5-12 % in the tests). Its **upper
bound** adds :data:`BOUND_STANDARD_ERRORS` standard errors of the mean
increase to the excess over the noise's half unit. A low-dose scan has a
small ``m``, hence a wide bound: it cannot say that a phase is absent, and
is not made to.

**The decision** (:func:`absent_phases`). Phase *k* is absent from a scan
when two things hold:

* the scan's upper bound is below :data:`ABSENT_RATIO` times the median
  level of *k* over the series' scans. Relative to the series, not
  absolute: the level is a fraction of each pixel's *signal*, which
  depends on how bright each phase's spectrum is, and what a specimen's
  phases typically contribute is a property of the series, not a constant.
  A phase missing from most scans of a series is never called absent (its
  median level is its leak), nor anything in a series of fewer than
  :data:`MIN_SCANS` scans;
* no tested pixel holds mostly *k* (at most :data:`MAX_HOLDING`): a pixel
  holds it when its own fit loses more than :data:`PIXEL_CHI_SQUARE`
  without it (noise alone: 5e-5 of pixels) and the loss makes *k* more
  than :data:`HOLDING_FRACTION` of its signal (the pixel's own level). A
  phase confined to a precipitate or a few grains has a small level, but
  the pixels that hold it are mostly that phase; a leak is a thin share of
  every pixel, significant in many at a high dose but the larger part of
  none. The scan's map is asked the same of every pixel
  (:func:`held_in_map`): a pixel whose map makes *k* more than half of its
  signal keeps *k* in the scan, so that a precipitate the tested sample
  misses is seen. A scan is never said to lack every phase.

**The action** (:func:`without_phases`). An absent phase's map is set to
zero; the other phases keep their loadings, so their fractions (normalised
per pixel) grow in proportion, and the encoder's and the spatial layer's
denoising are kept. Handing the absent phase's loadings to the phases
whose non-negative combination best reproduces its endmember measured
worse on all three sources below (mean RMSE with the ratio alone at 0.25,
an earlier run of the benchmark: 0.0976 against 0.0962, 0.2213 against
0.2202, 0.0720 against 0.0709).

**Measured** (``python benchmarks/absent_decision.py``,
``benchmarks/results/absent_decision.md``) on three series sources written
independently of each other (``eels_series``, and series mixed from the
STEM-EELS and the Raman-compound generators, the last phase removed from 2
of 10 scans; ``benchmarks/joint_volume.py``), three seeds each. With the
pixel condition fixed beforehand, the ratio (0.1-0.5) is chosen by the
lowest mean abundance RMSE on two sources (ties to the smaller ratio) and
judged on the third; every fold chose 0.3 or 0.25:

=============  ==========================  =======================  ========
left out       mean RMSE, none -> chosen   absent phase's fraction  called
=============  ==========================  =======================  ========
eels_series    0.1019 -> 0.0976            0.067 -> 0.014           5 of 6
stem_eels      0.2215 -> 0.2202            0.107 -> 0.075           3 of 6
raman          0.0644 -> 0.0639            0.008 -> 0.000           6 of 6
=============  ==========================  =======================  ========

No present phase was zeroed in any fold. Not a clean choice, though: the
pixel condition was written after the ratio alone, chosen leaving the
Raman series out, zeroed five present phases there (trace phases in about
5 % of the pixels, true mean fractions 0.047-0.132; RMSE 0.0644 ->
0.0927), and after a first condition (at most a share of the pixels
*needing* the phase, chosen at 5 %) let a synthetic precipitate of 9
pure pixels in 1024 be zeroed. On the STEM-EELS series half of the absent
scans are not called; where the joint endmembers themselves are wrong
(one STEM-EELS seed) none is, and the maps stay as trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from hs_aeunmix._screening import white_noise_variance
from hs_aeunmix._uncertainty import _MIN_COUNTS

# Spectra of a scan tested: enough for a standard error of a few percent of
# the mean increase, and a fraction of a second per scan.
PRESENCE_PIXELS = 1024
# Standard errors of the mean increase added for the upper bound.
BOUND_STANDARD_ERRORS = 2.0
# A phase is absent from a scan whose upper bound is below this fraction of
# the phase's median level over the series (chosen leaving each series
# source out, see the module docstring).
ABSENT_RATIO = 0.3
# Most tested pixels that may hold mostly a phase in a scan said to lack it
# (a precipitate, a few grains: a phase present in few pixels has a small
# level, but the pixels that hold it are mostly that phase).
MAX_HOLDING = 0
# Fewest scans for a median that describes the series.
MIN_SCANS = 3
# Chi-square a pixel's fit must lose without a phase for that pixel alone to
# show it: noise exceeds it with probability 5e-5 (half the time a needless
# coefficient is zero, else chi-square with one degree of freedom beyond
# 15.1 with probability 1e-4), 0.05 pixels in PRESENCE_PIXELS.
PIXEL_CHI_SQUARE = 15.1
# Share of a pixel's signal above which the pixel holds mostly that phase.
HOLDING_FRACTION = 0.5
# Expected chi-square a needless non-negative coefficient removes: half the
# time zero, half the time chi-square with one degree of freedom.
_NULL_INCREASE = 0.5


@dataclass(frozen=True)
class PhaseLevels:
    """How much of each endmember a scan's spectra need (:func:`phase_levels`).

    Attributes
    ----------
    level : numpy.ndarray of shape (n_components,)
        Root-mean-square fraction of the pixels' signal each phase accounts
        for, estimated from the chi-square its removal adds.
    upper : numpy.ndarray of shape (n_components,)
        Its upper bound (:data:`BOUND_STANDARD_ERRORS` standard errors).
    n_pixels : int
        Spectra tested.
    n_needing : numpy.ndarray of shape (n_components,)
        Of those, the spectra whose own fit needs each phase beyond what noise
        explains (the chi-square its removal adds exceeds
        :data:`PIXEL_CHI_SQUARE`).
    n_holding : numpy.ndarray of shape (n_components,)
        Of those, the spectra that need it and whose own level of it (the
        pixel's chi-square increase over its ``m``) exceeds
        :data:`HOLDING_FRACTION`: pixels mostly of that phase.
    """

    level: np.ndarray
    upper: np.ndarray
    n_pixels: int
    n_needing: np.ndarray
    n_holding: np.ndarray


def phase_levels(
    spectra: np.ndarray,
    endmembers: np.ndarray,
    background_basis: np.ndarray | None = None,
    *,
    counts: bool,
    rng: np.random.Generator,
) -> PhaseLevels | None:
    """Each endmember's level in ``spectra`` (module docstring); None if unknowable.

    Parameters
    ----------
    spectra : numpy.ndarray of shape (n_pixels, n_channels)
        A scan's spectra on the endmembers' channels.
    endmembers : numpy.ndarray of shape (n_components, n_channels)
    background_basis : numpy.ndarray of shape (n_basis, n_channels), optional
        Basis functions of the background, fitted with either sign.
    counts : bool
        Whether the scan's spectra are counts (Poisson noise; their
        interpolation onto the endmembers' channels leaves them counts in
        all but name).
    rng : numpy.random.Generator
        Draws the sample when there are more than :data:`PRESENCE_PIXELS`.

    Returns
    -------
    PhaseLevels or None
        None where fewer than two spectra hold signal, or the spectra have
        no more channels than the fit has coefficients.
    """
    spectra = np.asarray(spectra, dtype=np.float64)
    spectra = spectra[np.isfinite(spectra).all(axis=1) & (spectra.sum(axis=1) > 0)]
    if len(spectra) > PRESENCE_PIXELS:
        spectra = spectra[np.sort(rng.choice(len(spectra), PRESENCE_PIXELS, False))]
    basis = (
        np.zeros((0, endmembers.shape[1]))
        if background_basis is None
        else background_basis
    )
    columns = np.concatenate([endmembers, basis, -basis]).T
    n_components = len(endmembers)
    degrees = spectra.shape[1] - n_components - len(basis)
    if len(spectra) < 2 or degrees < 1:
        return None
    variance = _variance(spectra, columns, counts)
    full = np.empty(len(spectra))
    increase = np.empty((len(spectra), n_components))
    for row, (spectrum, pixel_variance) in enumerate(
        zip(spectra, variance, strict=True)
    ):
        weights = 1.0 / np.sqrt(pixel_variance)
        design = columns * weights[:, None]
        target = spectrum * weights
        full[row] = _misfit(design, target)
        for k in range(n_components):
            increase[row, k] = _misfit(np.delete(design, k, axis=1), target) - full[row]
    # The noise's scale as the full fit finds it (gain, a wrong noise model).
    scale = max(full.mean() / degrees, np.finfo(float).tiny)
    increase /= scale
    unexplained = _unexplained(spectra, endmembers, variance * scale)
    mean = increase.mean(axis=0)
    error = increase.std(axis=0, ddof=1) / np.sqrt(len(increase))
    need = unexplained.mean(axis=0)
    excess = np.maximum(mean - _NULL_INCREASE, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.sqrt(excess / need)
        # The noise's allowance is subtracted from the estimate, never from
        # its uncertainty: where counts are so few that it overstates what
        # a needless coefficient fits, the bound stays the scan's detection
        # limit instead of collapsing to zero.
        upper = np.sqrt((excess + BOUND_STANDARD_ERRORS * error) / need)
    # An endmember the others reproduce exactly has no level of its own.
    level[~(need > 0)] = np.nan
    upper[~(need > 0)] = np.nan
    needing = increase > PIXEL_CHI_SQUARE
    with np.errstate(divide="ignore", invalid="ignore"):
        own = (increase - _NULL_INCREASE) / unexplained
    holding = needing & (own > HOLDING_FRACTION**2)
    return PhaseLevels(
        level, upper, len(spectra), needing.sum(axis=0), holding.sum(axis=0)
    )


def absent_phases(
    levels: list[PhaseLevels | None],
    n_components: int,
    ratio: float = ABSENT_RATIO,
    max_holding: int | None = MAX_HOLDING,
) -> np.ndarray:
    """Which phases each scan lacks: (n_scans, n_components) booleans.

    Phase *k* is absent from a scan whose upper bound is below ``ratio``
    times the median of *k*'s levels over the scans and in which at most
    ``max_holding`` of the tested pixels hold mostly *k* (None: not asked;
    module docstring). Nothing is absent in a series of fewer than
    :data:`MIN_SCANS` scans with known levels, nor everything in one scan.
    """
    absent = np.zeros((len(levels), n_components), dtype=bool)
    known = [index for index, found in enumerate(levels) if found is not None]
    if len(known) < MIN_SCANS:
        return absent
    typical = np.median([levels[index].level for index in known], axis=0)
    for index in known:
        with np.errstate(invalid="ignore"):
            absent[index] = levels[index].upper < ratio * typical
        if max_holding is not None:
            absent[index] &= levels[index].n_holding <= max_holding
        if absent[index].all():
            # A scan that lacks every phase is unlike the series, not empty
            # of it: no decision.
            absent[index] = False
    return absent


def held_in_map(loadings: np.ndarray, endmembers: np.ndarray) -> np.ndarray:
    """Per endmember: the pixels whose map makes it most of their signal.

    A pixel's share of phase *k* is its loading times the endmember's
    total over the same for every endmember; counted where it exceeds
    :data:`HOLDING_FRACTION`. Every pixel of the map is looked at, not only
    the tested sample: a precipitate the sample misses is seen here.

    Parameters
    ----------
    loadings : numpy.ndarray of shape (n_pixels, n_components)
        NaN rows (pixels never unmixed) are left out.
    endmembers : numpy.ndarray of shape (n_components, n_channels)

    Returns
    -------
    numpy.ndarray of shape (n_components,), int
    """
    signal = np.asarray(loadings, dtype=np.float64) * endmembers.sum(axis=1)
    signal = signal[np.isfinite(signal).all(axis=1)]
    totals = signal.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(totals > 0, signal / totals, 0.0)
    return (shares > HOLDING_FRACTION).sum(axis=0)


def without_phases(loadings: np.ndarray, absent: np.ndarray) -> np.ndarray:
    """A copy of ``loadings`` with the ``absent`` columns zero (NaN rows kept NaN).

    Parameters
    ----------
    loadings : numpy.ndarray of shape (n_pixels, n_components)
    absent : numpy.ndarray of shape (n_components,), bool
    """
    result = np.array(loadings, dtype=np.float64)
    result[:, absent] = np.where(np.isnan(result[:, absent]), np.nan, 0.0)
    return result


def _misfit(design: np.ndarray, target: np.ndarray) -> float:
    """Squared residual of the non-negative least-squares fit of ``target``."""
    if design.shape[1] == 0:
        # scipy's nnls corrupts memory on a design without columns.
        return float(target @ target)
    return nnls(design, target)[1] ** 2


def _variance(spectra: np.ndarray, columns: np.ndarray, counts: bool) -> np.ndarray:
    """Each pixel's noise variance per channel: Poisson for counts, else white."""
    if not counts:
        return white_noise_variance(spectra)
    # Counts: the variance is the fitted rate, fitted once with the scan's
    # mean shape as the variance (a fit needs a variance to weight it by).
    mean = spectra.mean(axis=0)
    first = np.maximum(
        spectra.sum(axis=1, keepdims=True) * mean / max(mean.sum(), 1e-300),
        _MIN_COUNTS,
    )
    fitted = np.empty_like(spectra)
    for row, (spectrum, pixel_variance) in enumerate(zip(spectra, first, strict=True)):
        weights = 1.0 / np.sqrt(pixel_variance)
        coefficients = nnls(columns * weights[:, None], spectrum * weights)[0]
        fitted[row] = columns @ coefficients
    return np.maximum(fitted, _MIN_COUNTS)


def _unexplained(
    spectra: np.ndarray, endmembers: np.ndarray, variance: np.ndarray
) -> np.ndarray:
    """Per pixel and endmember: chi-square of the pixel's signal as pure *k*
    that the other endmembers cannot reproduce (``m`` of the module docstring).
    """
    weights = 1.0 / variance
    gram = np.einsum("pc,kc,jc->pkj", weights, endmembers, endmembers)
    # The pixel's signal, as counts of the spectrum: its sum over channels.
    totals = np.maximum(spectra.sum(axis=1), 0.0)
    brightness = endmembers.sum(axis=1)
    n_components = len(endmembers)
    result = np.empty((len(spectra), n_components))
    for k in range(n_components):
        others = np.delete(np.arange(n_components), k)
        own = gram[:, k, k]
        if len(others):
            cross = gram[:, others, k]
            inner = gram[:, others][:, :, others]
            solved = np.linalg.solve(_regularised(inner), cross[..., None])[..., 0]
            projected = np.einsum("pi,pi->p", cross, solved)
            own = own - projected
        scale = totals / brightness[k] if brightness[k] > 0 else np.zeros_like(totals)
        result[:, k] = np.maximum(own, 0.0) * scale**2
    return result


def _regularised(matrices: np.ndarray) -> np.ndarray:
    """Gram matrices made safely invertible (collinear endmembers)."""
    size = matrices.shape[-1]
    trace = np.trace(matrices, axis1=-2, axis2=-1)[:, None, None]
    return matrices + 1e-12 * trace / size * np.eye(size)
