"""Scores for spectral unmixing results.

Spectral scores follow Brun et al. (Eur. Phys. J. Appl. Phys. 99, 28, 2024):
the spectral angle distance (SAD) between estimated and true endmembers, and
the normalised mean squared error (NMSE) of the abundance maps. Estimated
endmembers come in arbitrary order, so they are first matched to the
reference ones by a Hungarian assignment on the spectral angle, as in Jensen
et al. The spatial scores (pixel-wise abundance variance, abundance entropy,
gradient energy) are those of Jensen et al. for maps without ground truth.

Conventions: endmembers are arrays of shape ``(n_endmembers, n_channels)``;
abundances are arrays of shape ``(..., n_endmembers)`` whose leading axes are
the navigation axes (``(ny, nx, n)`` or ``(n_pixels, n)``). HyperSpy
decomposition loadings are ``(n, ny, nx)``: move the component axis last
(``np.moveaxis(loadings.data, 0, -1)``) before scoring.

Scale: a linear unmixing result fixes each component only up to a factor
split between endmember and loading (NMF and ICA keep the intensity in the
endmembers). Spectral angles ignore it; abundance scores compare fractions,
which are defined relative to the reference endmembers' own normalisation.
:func:`fractions_on_reference_scale` moves the least-squares scale of each
estimated endmember relative to its reference into the loadings and
normalises every pixel to sum to one; the project's benchmark does this for
every method before :func:`abundance_rmse` with ``scale="none"``. The
``scale`` options of the abundance scores are cruder alternatives that see
only the abundances.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from hs_aeunmix._constraints import check_count

if TYPE_CHECKING:
    from hs_aeunmix.datasets import GroundTruth

__all__ = [
    "abundance_entropy",
    "abundance_nmse",
    "abundance_rmse",
    "fractions_on_reference_scale",
    "gradient_energy",
    "match_endmembers",
    "mean_spectral_angle",
    "pixelwise_abundance_variance",
    "reconstruction_error",
    "spectral_angle",
    "spectral_angles",
    "uncertainty_on_reference_scale",
    "uncertainty_scores",
    "unmixing_scores",
]

AbundanceScale = Literal["none", "fit", "sum_to_one"]
_ABUNDANCE_SCALES = ("none", "fit", "sum_to_one")


def spectral_angle(
    estimated: np.ndarray, reference: np.ndarray, *, degrees: bool = False
) -> float | np.ndarray:
    """Angle between spectra, the spectral angle distance (SAD).

    ``SAD = arccos(a·â / (‖a‖ ‖â‖))``, computed with the numerically stable
    form ``2 atan2(‖u - v‖, ‖u + v‖)`` of the unit vectors ``u`` and ``v`` so
    that identical spectra give exactly 0. The angle ignores the scale of
    the spectra.

    Parameters
    ----------
    estimated, reference : numpy.ndarray
        Spectra along the last axis: two vectors, or row-wise matrices
        ``(n, n_channels)`` compared row by row (they broadcast).
    degrees : bool
        Return degrees instead of radians.

    Returns
    -------
    float or numpy.ndarray
        A float for two vectors, else one angle per row. A spectrum with zero
        norm has no direction and gives NaN.

    Raises
    ------
    ValueError
        If the channel counts differ or an input is a scalar.
    """
    estimated = np.asarray(estimated, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if estimated.ndim == 0 or reference.ndim == 0:
        raise ValueError("spectral_angle needs spectra, not scalars.")
    if estimated.shape[-1] != reference.shape[-1]:
        raise ValueError(
            "estimated and reference must have the same number of channels, got "
            f"{estimated.shape[-1]} and {reference.shape[-1]}."
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        unit_estimated = estimated / np.linalg.norm(estimated, axis=-1, keepdims=True)
        unit_reference = reference / np.linalg.norm(reference, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(
        np.linalg.norm(unit_estimated - unit_reference, axis=-1),
        np.linalg.norm(unit_estimated + unit_reference, axis=-1),
    )
    if degrees:
        angle = np.degrees(angle)
    if np.ndim(angle) == 0:
        return float(angle)
    return angle


def _as_endmember_matrix(name: str, values: np.ndarray) -> np.ndarray:
    matrix = np.asarray(values, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D (n_endmembers, n_channels) array, "
            f"got shape {matrix.shape}."
        )
    return matrix


def _angle_matrix(estimated: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Spectral angles, rows: reference endmembers, columns: estimated ones."""
    return spectral_angle(estimated[None, :, :], reference[:, None, :])


def match_endmembers(estimated: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Match estimated endmembers to reference ones by spectral angle.

    Solves the assignment that minimises the sum of spectral angles with the
    Hungarian algorithm (:func:`scipy.optimize.linear_sum_assignment`).

    Parameters
    ----------
    estimated : numpy.ndarray
        Estimated endmembers, shape ``(n_estimated, n_channels)`` with
        ``n_estimated >= n_reference``; extra estimates are left unmatched.
    reference : numpy.ndarray
        Reference endmembers, shape ``(n_reference, n_channels)``.

    Returns
    -------
    numpy.ndarray
        Integer array ``order`` of length ``n_reference`` such that
        ``estimated[order]`` is aligned with ``reference``.

    Raises
    ------
    ValueError
        If the arrays are not 2-D, the channel counts differ or there are
        fewer estimated than reference endmembers.
    """
    estimated = _as_endmember_matrix("estimated", estimated)
    reference = _as_endmember_matrix("reference", reference)
    if estimated.shape[1] != reference.shape[1]:
        raise ValueError(
            "estimated and reference endmembers must have the same number of "
            f"channels, got {estimated.shape[1]} and {reference.shape[1]}."
        )
    if estimated.shape[0] < reference.shape[0]:
        raise ValueError(
            f"Cannot match {estimated.shape[0]} estimated endmembers to "
            f"{reference.shape[0]} reference endmembers: at least as many "
            "estimates as references are needed."
        )
    cost = _angle_matrix(estimated, reference)
    # A zero spectrum has no angle; make it the worst possible match so that
    # it is only used when nothing else is left.
    cost = np.where(np.isnan(cost), np.pi, cost)
    _, order = linear_sum_assignment(cost)
    return order.astype(np.intp)


def spectral_angles(
    estimated: np.ndarray,
    reference: np.ndarray,
    *,
    order: np.ndarray | None = None,
    degrees: bool = False,
) -> np.ndarray:
    """Spectral angle of each reference endmember to its matched estimate.

    Parameters
    ----------
    estimated, reference : numpy.ndarray
        Endmembers, shapes ``(n_estimated, n_channels)`` and
        ``(n_reference, n_channels)``.
    order : numpy.ndarray or None
        Matching from :func:`match_endmembers`; computed when None.
    degrees : bool
        Return degrees instead of radians.

    Returns
    -------
    numpy.ndarray
        Angles, shape ``(n_reference,)``, in the order of ``reference``.
    """
    estimated = _as_endmember_matrix("estimated", estimated)
    reference = _as_endmember_matrix("reference", reference)
    order = _check_order(
        match_endmembers(estimated, reference) if order is None else order,
        estimated.shape[0],
        reference.shape[0],
    )
    return np.atleast_1d(
        spectral_angle(estimated[order], reference, degrees=degrees)
    ).astype(float)


def mean_spectral_angle(
    estimated: np.ndarray,
    reference: np.ndarray,
    *,
    order: np.ndarray | None = None,
    degrees: bool = False,
) -> float:
    """Mean spectral angle distance after matching (see :func:`spectral_angles`)."""
    return float(
        np.mean(spectral_angles(estimated, reference, order=order, degrees=degrees))
    )


def _check_order(order: np.ndarray, n_estimated: int, n_reference: int) -> np.ndarray:
    order = np.asarray(order)
    if order.ndim != 1 or order.size != n_reference:
        raise ValueError(
            f"order must be a 1-D array of {n_reference} indices, got shape "
            f"{order.shape}."
        )
    if not np.issubdtype(order.dtype, np.integer):
        raise ValueError(f"order must hold integer indices, got dtype {order.dtype}.")
    if order.size and (order.min() < 0 or order.max() >= n_estimated):
        raise ValueError(
            f"order indices must lie in [0, {n_estimated}), got {order.tolist()}."
        )
    if np.unique(order).size != order.size:
        raise ValueError(f"order must not repeat indices, got {order.tolist()}.")
    return order


def _paired_abundances(
    estimated: np.ndarray,
    reference: np.ndarray,
    order: np.ndarray | None,
    scale: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Flatten, align, rescale and drop NaN pixels; returns (estimated, reference)."""
    if scale not in _ABUNDANCE_SCALES:
        raise ValueError(f"scale must be one of {_ABUNDANCE_SCALES}, got {scale!r}.")
    estimated = np.asarray(estimated, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if estimated.ndim < 2 or reference.ndim < 2:
        raise ValueError(
            "Abundances must have shape (..., n_endmembers) with at least one "
            f"navigation axis, got {estimated.shape} and {reference.shape}."
        )
    estimated = estimated.reshape(-1, estimated.shape[-1])
    reference = reference.reshape(-1, reference.shape[-1])
    if estimated.shape[0] != reference.shape[0]:
        raise ValueError(
            "estimated and reference abundances must cover the same number of "
            f"pixels, got {estimated.shape[0]} and {reference.shape[0]}."
        )
    n_estimated, n_reference = estimated.shape[1], reference.shape[1]
    if order is None:
        if n_estimated != n_reference:
            raise ValueError(
                f"{n_estimated} estimated and {n_reference} reference abundance "
                "maps: pass order (from match_endmembers) to pair them."
            )
        order = np.arange(n_reference)
    order = _check_order(order, n_estimated, n_reference)

    if scale == "sum_to_one":
        # Fractions relative to everything the method found in the pixel,
        # including unmatched extra components.
        totals = estimated.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            estimated = np.where(totals != 0, estimated / totals, 0.0)
    estimated = estimated[:, order]

    valid = ~(np.isnan(estimated).any(axis=1) | np.isnan(reference).any(axis=1))
    estimated, reference = estimated[valid], reference[valid]
    if estimated.shape[0] == 0:
        raise ValueError("No pixel without NaN is left to compare.")

    if scale == "fit":
        numerator = np.sum(estimated * reference, axis=0)
        denominator = np.sum(estimated * estimated, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            factors = np.where(denominator > 0, numerator / denominator, 0.0)
        estimated = estimated * np.maximum(factors, 0.0)
    return estimated, reference


def abundance_rmse(
    estimated: np.ndarray,
    reference: np.ndarray,
    *,
    order: np.ndarray | None = None,
    scale: AbundanceScale = "none",
    per_endmember: bool = False,
) -> float | np.ndarray:
    """Root mean squared error between abundance maps.

    Parameters
    ----------
    estimated : numpy.ndarray
        Estimated abundances, shape ``(..., n_estimated)``.
    reference : numpy.ndarray
        True abundances, shape ``(..., n_reference)`` with the same number of
        pixels. Pixels where either holds a NaN (masked pixels) are ignored.
    order : numpy.ndarray or None
        Columns of ``estimated`` matching each reference endmember, usually
        ``match_endmembers(estimated_endmembers, true_endmembers)``. None
        means the columns are already aligned (same count required).
    scale : {"none", "fit", "sum_to_one"}
        How to put the estimates on the scale of the fractions:

        * ``"none"``: compare as is. Right for methods whose abundances sum
          to one (autoencoders with a softmax or sum-to-one layer, FCLS,
          VCA + FCLS). This is the protocol of Brun et al., which penalises
          methods such as NMF or ICA whose loadings are not fractions. The
          project's benchmark first converts every method's loadings with
          :func:`fractions_on_reference_scale` (each estimated endmember's
          scale relative to its reference moved into the loadings, then
          clipped at zero and normalised to sum to one per pixel), then
          compares with ``"none"``.
        * ``"fit"``: multiply each matched map by the non-negative
          least-squares factor that best fits the reference. Removes the
          arbitrary scale split between endmembers and loadings (NMF keeps
          the intensity in the endmembers); shows how good the maps are up
          to one factor per endmember.
        * ``"sum_to_one"``: divide each pixel's estimated abundances by their
          sum (over all estimated components) before comparing. Pixels
          summing to zero compare as zeros. This ignores the scale of the
          estimated endmembers, so it distorts the fractions of methods
          that keep different amounts of intensity in different endmembers;
          :func:`fractions_on_reference_scale` accounts for it.
    per_endmember : bool
        Return one RMSE per reference endmember instead of the overall RMSE.

    Returns
    -------
    float or numpy.ndarray
        Overall RMSE over all pixels and matched endmembers, or the array of
        per-endmember RMSEs.

    Raises
    ------
    ValueError
        For inconsistent shapes, an invalid ``order`` or ``scale``.
    """
    estimated, reference = _paired_abundances(estimated, reference, order, scale)
    squared = (estimated - reference) ** 2
    if per_endmember:
        return np.sqrt(squared.mean(axis=0))
    return float(np.sqrt(squared.mean()))


def abundance_nmse(
    estimated: np.ndarray,
    reference: np.ndarray,
    *,
    order: np.ndarray | None = None,
    scale: AbundanceScale = "none",
    per_endmember: bool = False,
) -> float | np.ndarray:
    """Normalised mean squared error of abundance maps (Brun et al. 2024).

    For each endmember, with :math:`Z` its true ``ny x nx`` abundance map and
    :math:`\\hat{Z}` the estimate,

    .. math:: \\mathrm{NMSE} = \\frac{\\|Z - \\hat{Z}\\|_F^2}{\\|Z\\|_F^2},

    :math:`\\|\\cdot\\|_F` being the Frobenius norm. The paper defines the
    score per endmember map; the single value is the mean over the
    reference endmembers. (The equation is an image in our copy of the
    paper; the squared form follows the name of the score and the usual
    definition in the unmixing literature.)

    Parameters
    ----------
    estimated, reference, order, scale
        As in :func:`abundance_rmse`.
    per_endmember : bool
        Return the per-endmember NMSE array instead of its mean.

    Returns
    -------
    float or numpy.ndarray
        Mean NMSE, or one NMSE per reference endmember. A reference map that
        is zero everywhere gives infinity (NaN if the estimate is zero too).
    """
    estimated, reference = _paired_abundances(estimated, reference, order, scale)
    error = np.sum((estimated - reference) ** 2, axis=0)
    energy = np.sum(reference**2, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        nmse = error / energy
    if per_endmember:
        return nmse
    return float(np.mean(nmse))


def fractions_on_reference_scale(
    estimated_endmembers: np.ndarray,
    estimated_abundances: np.ndarray,
    reference_endmembers: np.ndarray,
    *,
    order: np.ndarray | None = None,
) -> np.ndarray:
    """Put estimated loadings on the fraction scale of the reference endmembers.

    A linear unmixing result fixes each component only up to a factor that
    it splits freely between the endmember and its loading: NMF and ICA
    split it arbitrarily, sum-to-one methods (FCLS, the autoencoder) keep
    all of it in endmembers in the data's units. Reference
    fractions, in contrast, are defined relative to the reference endmembers
    as they are normalised: the noiseless data are
    ``intensity * (fractions @ reference_endmembers)``. This is how the
    synthetic truths of :mod:`hs_aeunmix.datasets` are built, and how the
    Samson reference maps ``S_GT`` relate to the max-normalised ``GT``
    spectra (non-negative least squares of each spectrum on ``GT``, divided
    by its sum, reproduces ``S_GT`` to an RMSE of 0.002).

    This function implements exactly that convention. For each reference
    endmember :math:`r_k` and its matched estimate :math:`e_k` with loadings
    :math:`a_k`:

    1. fit the least-squares scale
       :math:`c_k = \\langle e_k, r_k\\rangle / \\langle r_k, r_k\\rangle`
       of :math:`e_k \\approx c_k r_k`;
    2. multiply the loadings by it, :math:`a_k \\leftarrow c_k a_k`, since
       :math:`a_k e_k \\approx (c_k a_k) r_k`: the intensity moves from the
       endmember into the abundances, in the reference's units;
    3. clip negative abundances to zero;
    4. divide each pixel by its sum over the ``n_reference`` matched
       components. An intensity common to all components of a pixel
       (thickness) cancels here.

    Normalising the loadings per pixel without step 2 divides map :math:`k`
    by :math:`c_k` and distorts the fractions whenever the :math:`c_k`
    differ, which penalises methods for where they keep the scale rather
    than for what they found. The project's benchmark (``benchmarks/run.py``)
    applies this function to every method, whatever its own abundance
    convention, then scores with ``abundance_rmse(..., scale="none")``.

    Parameters
    ----------
    estimated_endmembers : numpy.ndarray
        Shape ``(n_estimated, n_channels)``, ``n_estimated >= n_reference``,
        in any order and scale.
    estimated_abundances : numpy.ndarray
        Loadings of the estimated endmembers, shape ``(..., n_estimated)``
        (for example ``(ny, nx, n_estimated)`` or
        ``(n_pixels, n_estimated)``), such that the data are approximately
        ``estimated_abundances @ estimated_endmembers``.
    reference_endmembers : numpy.ndarray
        Shape ``(n_reference, n_channels)``; their normalisation defines the
        fraction scale.
    order : numpy.ndarray or None
        Index of the estimated endmember matched to each reference one, as
        returned by :func:`match_endmembers`; computed with it (Hungarian
        assignment on the spectral angle) when None.

    Returns
    -------
    numpy.ndarray
        Fractions, shape ``(..., n_reference)``, columns in the order of
        ``reference_endmembers``. Each pixel sums to one, except pixels whose
        clipped, rescaled loadings are all zero (all zeros) and pixels with a
        NaN among the matched loadings (all NaN, as masked pixels are).

    Raises
    ------
    ValueError
        If an endmember array is not 2-D or not finite, the channel counts
        differ, ``estimated_abundances`` does not end with one column per
        estimated endmember, ``order`` is invalid, or a reference endmember
        is zero (it has no scale).

    Notes
    -----
    Unmatched extra estimates (``n_estimated > n_reference``) are dropped
    before step 4: they have no reference scale, so the fractions are
    relative to the matched components only.

    When :math:`c_k \\le 0` the matched estimate is orthogonal or
    anti-correlated to its reference (spectral angle of 90° or more) and
    explains none of it in the least-squares sense: :math:`c_k` is clipped
    to 0, so its fractions are zero everywhere and the pixels are
    normalised over the other components. The sign is not repaired; resolve
    sign ambiguities (ICA) before, as the benchmark does by flipping each
    source to a positive sum.
    """
    estimated_endmembers = _as_endmember_matrix(
        "estimated_endmembers", estimated_endmembers
    )
    reference_endmembers = _as_endmember_matrix(
        "reference_endmembers", reference_endmembers
    )
    n_estimated, n_channels = estimated_endmembers.shape
    n_reference = reference_endmembers.shape[0]
    if reference_endmembers.shape[1] != n_channels:
        raise ValueError(
            "estimated_endmembers and reference_endmembers must have the same "
            f"number of channels, got {n_channels} and "
            f"{reference_endmembers.shape[1]}."
        )
    for name, matrix in (
        ("estimated_endmembers", estimated_endmembers),
        ("reference_endmembers", reference_endmembers),
    ):
        if not np.all(np.isfinite(matrix)):
            # HyperSpy gives masked channels NaN factors; a scale fitted on
            # them would silently turn every fraction into NaN.
            raise ValueError(
                f"{name} contain NaN or infinite values; drop those channels "
                "from both endmember arrays first."
            )
    abundances = np.asarray(estimated_abundances, dtype=float)
    if abundances.ndim == 0 or abundances.shape[-1] != n_estimated:
        raise ValueError(
            f"estimated_abundances must have shape (..., {n_estimated}), one "
            f"column per estimated endmember, got shape {abundances.shape}."
        )
    reference_energy = np.sum(reference_endmembers**2, axis=1)
    if np.any(reference_energy == 0):
        raise ValueError(
            "reference endmembers "
            f"{np.flatnonzero(reference_energy == 0).tolist()} are zero and "
            "define no fraction scale."
        )
    if order is None:
        order = match_endmembers(estimated_endmembers, reference_endmembers)
    order = _check_order(order, n_estimated, n_reference)

    scales = _reference_scales(estimated_endmembers, reference_endmembers, order)
    scaled = np.clip(abundances[..., order] * np.maximum(scales, 0.0), 0.0, None)
    totals = scaled.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            np.isnan(totals), np.nan, np.where(totals > 0, scaled / totals, 0.0)
        )


def _reference_scales(
    estimated: np.ndarray, reference: np.ndarray, order: np.ndarray
) -> np.ndarray:
    """``c_k = <e_k, r_k> / <r_k, r_k>``: each matched estimate's scale."""
    return np.sum(estimated[order] * reference, axis=1) / np.sum(reference**2, axis=1)


def uncertainty_on_reference_scale(
    estimated_endmembers: np.ndarray,
    fractions: np.ndarray,
    covariance: np.ndarray,
    reference_endmembers: np.ndarray,
    order: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fractions and their standard deviations on the reference endmembers' scale.

    The fractions of a model (``AEUnmix.fractions``) refer to its own
    endmembers' scale; :func:`fractions_on_reference_scale` (without the
    clipping) moves them to the reference's, ``f_k = c_k a_k / sum_j c_j
    a_j`` with ``c_k`` the least-squares scale of matched endmember ``k``,
    and the covariance (``AEUnmix`` via
    :func:`hs_aeunmix._uncertainty.fraction_covariance`) follows through the
    derivative of that map.

    Parameters
    ----------
    estimated_endmembers : numpy.ndarray of shape (n_estimated, n_channels)
    fractions : numpy.ndarray of shape (n_pixels, n_estimated)
    covariance : numpy.ndarray of shape (n_pixels, n_estimated, n_estimated)
    reference_endmembers : numpy.ndarray of shape (n_reference, n_channels)
    order : numpy.ndarray, optional
        Estimated index per reference endmember (:func:`match_endmembers`).

    Returns
    -------
    fractions, sigma : numpy.ndarray of shape (n_pixels, n_reference)
    """
    reference = _as_endmember_matrix("reference_endmembers", reference_endmembers)
    estimated = _as_endmember_matrix("estimated_endmembers", estimated_endmembers)
    if order is None:
        order = match_endmembers(estimated, reference)
    order = _check_order(order, estimated.shape[0], reference.shape[0])
    scale = _reference_scales(estimated, reference, order)
    fractions = np.asarray(fractions, dtype=float)[:, order]
    covariance = np.asarray(covariance, dtype=float)[:, order][:, :, order]
    total = fractions @ scale
    total = np.where(total > 0, total, np.nan)
    rescaled = scale * fractions / total[:, None]
    derivative = (
        np.eye(len(scale))[None] * (scale[None, :, None] / total[:, None, None])
        - rescaled[:, :, None] * scale[None, None, :] / total[:, None, None]
    )
    carried = np.einsum("pij,pjk,plk->pil", derivative, covariance, derivative)
    sigma = np.sqrt(np.maximum(np.diagonal(carried, axis1=1, axis2=2), 0.0))
    return rescaled, sigma


def uncertainty_scores(
    fractions: np.ndarray, sigma: np.ndarray, true_fractions: np.ndarray
) -> dict[str, float]:
    """How well standard deviations describe the errors of fractions.

    Returns ``"coverage"``, the share of pixel-endmember pairs whose true
    fraction lies within ``±2σ`` of the estimate (about 0.95 for calibrated
    Gaussian errors), ``"coverage_1sigma"``, the same within ``±σ`` (about
    0.68: a coverage of 1.0 at ``±2σ`` may hide a ``σ`` far too wide), and
    ``"rank_correlation"``, Spearman's correlation between ``σ`` and the
    absolute error (pairs with a NaN left out).
    """
    from scipy.stats import spearmanr

    error = np.abs(np.asarray(fractions) - np.asarray(true_fractions)).ravel()
    sigma = np.asarray(sigma).ravel()
    finite = np.isfinite(error) & np.isfinite(sigma)
    error, sigma = error[finite], sigma[finite]
    return {
        "coverage": float(np.mean(error <= 2 * sigma)),
        "coverage_1sigma": float(np.mean(error <= sigma)),
        "rank_correlation": float(spearmanr(sigma, error)[0]),
    }


def reconstruction_error(
    data: np.ndarray,
    endmembers: np.ndarray,
    abundances: np.ndarray,
    *,
    relative: bool = False,
) -> float:
    """Error of the linear-mixing reconstruction ``abundances @ endmembers``.

    Parameters
    ----------
    data : numpy.ndarray
        Data, shape ``(..., n_channels)``.
    endmembers : numpy.ndarray
        Shape ``(n_endmembers, n_channels)``.
    abundances : numpy.ndarray
        Shape ``(..., n_endmembers)`` with the same navigation size as
        ``data``.
    relative : bool
        Return ``‖X - A E‖_F / ‖X‖_F`` instead of the RMSE.

    Returns
    -------
    float
        RMSE over all values (in data units) or the relative Frobenius error.
        Pixels with NaN are ignored.
    """
    data = np.asarray(data, dtype=float)
    endmembers = _as_endmember_matrix("endmembers", endmembers)
    abundances = np.asarray(abundances, dtype=float)
    if data.ndim < 1 or data.shape[-1] != endmembers.shape[1]:
        raise ValueError(
            f"data has {data.shape[-1] if data.ndim else 0} channels but the "
            f"endmembers have {endmembers.shape[1]}."
        )
    if abundances.ndim < 1 or abundances.shape[-1] != endmembers.shape[0]:
        raise ValueError(
            f"abundances must end with {endmembers.shape[0]} endmembers, got "
            f"shape {abundances.shape}."
        )
    data = data.reshape(-1, data.shape[-1])
    abundances = abundances.reshape(-1, abundances.shape[-1])
    if data.shape[0] != abundances.shape[0]:
        raise ValueError(
            f"data has {data.shape[0]} pixels but abundances have "
            f"{abundances.shape[0]}."
        )
    residual = data - abundances @ endmembers
    valid = ~np.isnan(residual).any(axis=1)
    residual, data = residual[valid], data[valid]
    if relative:
        return float(np.linalg.norm(residual) / np.linalg.norm(data))
    return float(np.sqrt(np.mean(residual**2)))


def _as_abundance_maps(abundances: np.ndarray) -> np.ndarray:
    maps = np.asarray(abundances, dtype=float)
    if maps.ndim != 3:
        raise ValueError(
            f"Abundance maps must have shape (ny, nx, n_endmembers), got {maps.shape}."
        )
    return maps


def pixelwise_abundance_variance(abundances: np.ndarray) -> float:
    """Mean over pixels of the variance of the abundances within each pixel.

    Jensen et al.:
    :math:`\\frac{1}{HW}\\sum_{x,y}\\frac{1}{N}\\sum_n(a_{x,y,n} -
    \\bar{a}_{x,y})^2` with :math:`\\bar{a}_{x,y}` the mean abundance of the
    pixel (population variance). High values mean that pixels are dominated
    by few endmembers (sharp unmixing); equal fractions give 0.

    Parameters
    ----------
    abundances : numpy.ndarray
        Maps, shape ``(ny, nx, n_endmembers)``. NaN pixels are ignored.

    Returns
    -------
    float
    """
    maps = _as_abundance_maps(abundances)
    return float(np.nanmean(np.var(maps, axis=-1)))


def abundance_entropy(
    abundances: np.ndarray,
    *,
    bins: int = 50,
    value_range: tuple[float, float] | None = None,
) -> float:
    """Shannon entropy of the histogram of all abundance values.

    Jensen et al.: :math:`-\\sum_i p_i \\log p_i` (natural log), with
    :math:`p_i` the fraction of all abundance values (every pixel and
    endmember) in bin :math:`i`; empty bins contribute 0. Low entropy means
    values concentrated in few bins (e.g. near 0 and 1).

    Parameters
    ----------
    abundances : numpy.ndarray
        Abundances of any shape; NaNs are ignored.
    bins : int
        Number of histogram bins.
    value_range : tuple of float or None
        Histogram range. None uses the minimum and maximum of the values;
        pass ``(0, 1)`` to compare fractional abundances of several methods
        on the same bins (values outside the range are then not counted).

    Returns
    -------
    float
        Entropy in nats, between 0 and ``log(bins)``.
    """
    check_count("bins", bins, "abundance_entropy")
    values = np.asarray(abundances, dtype=float).ravel()
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise ValueError("abundance_entropy needs at least one value that is not NaN.")
    counts, _ = np.histogram(values, bins=bins, range=value_range)
    total = counts.sum()
    if total == 0:
        raise ValueError(f"No abundance value falls within value_range={value_range}.")
    probabilities = counts[counts > 0] / total
    return float(-np.sum(probabilities * np.log(probabilities)))


def gradient_energy(
    abundances: np.ndarray, *, spacing: float | tuple[float, float] = 1.0
) -> float:
    """Mean squared spatial gradient of the abundance maps.

    Jensen et al.:
    :math:`\\frac{1}{N}\\sum_n\\frac{1}{HW}\\sum_{x,y}\\|\\nabla a_{x,y,n}\\|^2`,
    with :math:`\\|\\nabla a\\|^2 = (\\partial_x a)^2 + (\\partial_y a)^2`
    computed by :func:`numpy.gradient` (central differences inside, one-sided
    at the borders). High values mean sharp, high-contrast maps; smooth maps
    give low values.

    Parameters
    ----------
    abundances : numpy.ndarray
        Maps, shape ``(ny, nx, n_endmembers)``. NaN pixels (and their
        neighbours' gradients) are ignored.
    spacing : float or tuple of float
        Pixel size along y and x; the default 1 gives gradients per pixel.

    Returns
    -------
    float
    """
    maps = _as_abundance_maps(abundances)
    if min(maps.shape[:2]) < 2:
        raise ValueError(
            f"gradient_energy needs at least 2 x 2 pixels, got {maps.shape[:2]}."
        )
    spacing_y, spacing_x = (spacing, spacing) if np.isscalar(spacing) else spacing
    gradient_y, gradient_x = np.gradient(maps, spacing_y, spacing_x, axis=(0, 1))
    return float(np.nanmean(gradient_y**2 + gradient_x**2))


def unmixing_scores(
    estimated_endmembers: np.ndarray,
    estimated_abundances: np.ndarray,
    truth: GroundTruth,
) -> dict[str, object]:
    """All ground-truth scores of an unmixing result, by the project's protocol.

    1. Estimated endmembers are matched to ``truth.endmembers`` by spectral
       angle (:func:`match_endmembers`, a Hungarian assignment);
    2. the spectral angle of each matched pair is measured;
    3. the loadings are put on the fraction scale of the reference
       endmembers (:func:`fractions_on_reference_scale`: each matched map
       times the least-squares scale of its endmember relative to the
       reference, clipped at zero, normalised per pixel), so that every
       method is scored alike whatever scale it keeps in its endmembers;
    4. the fractions are compared with ``truth.abundances`` (RMSE and NMSE).

    Parameters
    ----------
    estimated_endmembers : numpy.ndarray
        Shape ``(n_estimated, n_channels)``, ``n_estimated >=
        truth.n_endmembers``, in any order and scale.
    estimated_abundances : numpy.ndarray
        Loadings such that the data are about ``estimated_abundances @
        estimated_endmembers``: shape ``(ny, nx, n_estimated)`` or
        ``(n_pixels, n_estimated)``, pixels in the order of
        ``truth.abundances``.
    truth : GroundTruth
        Ground truth from :mod:`hs_aeunmix.datasets` (any object with
        ``endmembers``, ``abundances`` and ``names`` works).

    Returns
    -------
    dict
        ``"order"`` (list of int, estimated index per true endmember),
        ``"mean_sad_rad"`` (float), ``"sad_rad"`` (dict name -> float),
        ``"abundance_rmse"`` (float), ``"abundance_nmse"`` (float, mean over
        endmembers), ``"abundance_nmse_per_endmember"`` (dict name -> float)
        and ``"fractions"`` (the estimated fractions, shape
        ``(n_pixels, n_reference)``).

    Examples
    --------
    >>> from hs_aeunmix import datasets, metrics
    >>> signal, truth = datasets.eels_chequerboard(3, random_state=0)
    >>> spectra = signal.data.reshape(-1, signal.data.shape[-1])
    >>> from hs_aeunmix._vca import nonnegative_least_squares
    >>> loadings = nonnegative_least_squares(spectra, truth.endmembers)
    >>> scores = metrics.unmixing_scores(truth.endmembers, loadings, truth)
    >>> round(scores["mean_sad_rad"], 6)
    0.0
    """
    reference_endmembers = _as_endmember_matrix("truth.endmembers", truth.endmembers)
    estimated_endmembers = _as_endmember_matrix(
        "estimated_endmembers", estimated_endmembers
    )
    n_reference = reference_endmembers.shape[0]
    order = match_endmembers(estimated_endmembers, reference_endmembers)
    angles = spectral_angles(estimated_endmembers, reference_endmembers, order=order)
    abundances = np.asarray(estimated_abundances, dtype=float)
    fractions = fractions_on_reference_scale(
        estimated_endmembers,
        abundances.reshape(-1, abundances.shape[-1]),
        reference_endmembers,
        order=order,
    )
    reference = np.asarray(truth.abundances, dtype=float).reshape(-1, n_reference)
    nmse = abundance_nmse(fractions, reference, scale="none", per_endmember=True)
    names = tuple(truth.names)
    return {
        "order": [int(index) for index in order],
        "mean_sad_rad": float(np.mean(angles)),
        "sad_rad": dict(zip(names, map(float, angles), strict=True)),
        "abundance_rmse": abundance_rmse(fractions, reference, scale="none"),
        "abundance_nmse": float(np.mean(nmse)),
        "abundance_nmse_per_endmember": dict(zip(names, map(float, nmse), strict=True)),
        "fractions": fractions,
    }
