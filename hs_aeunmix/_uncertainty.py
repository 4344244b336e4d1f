"""How sure each pixel's fractions are: a Laplace approximation per pixel.

Given the endmembers ``E`` (``components_``), a pixel's spectrum is modelled
as ``x = s * (a @ E) + c @ B + noise``: intensity ``s``, fractions ``a``
(summing to one with ``abundance="sum_to_one"``), background coefficients
``c`` on the basis ``B`` (``baseline_components_``, when the model has
one). Around the fitted values, the log-likelihood is quadratic in ``(a,
c)`` with curvature ``F = Gᵀ W G`` (the Fisher information): ``G`` stacks
``s * E`` (restricted to directions that keep the sum of ``a`` fixed) and
``B``, and ``W`` holds the inverse noise variance of each channel. The
covariance of the fractions is the fractions' block of ``F⁻¹`` (the
background marginalised), and its diagonal's square root is the standard
deviation (:func:`standard_deviations`).

Why a Laplace approximation and not an ensemble of networks: it costs one
matrix product per pixel batch (no training), it applies to a reapplied
model as to a trained one, and its noise model is the one the data have:

* **counts** (non-negative integers, as EELS and EDS cameras give): Poisson,
  variance = the fitted spectrum (at least one count);
* **anything else**: white noise of each pixel's DER_SNR standard deviation
  (:func:`hs_aeunmix._screening.der_snr_noise`).

Where the model does not reproduce a pixel within its noise (a phase the
endmembers lack, drift, a wrong noise level), the standard deviation is
multiplied by ``sqrt(chi2 / dof)`` when that exceeds one (the Birge ratio):
a pixel the model explains worse is less sure.

The encoder's answer is not each pixel's best fit given the endmembers (an
amortisation gap): one Newton step from it, ``F⁻¹ g`` with ``g`` the
gradient of the log-likelihood, estimates how far it is, and its outer
product is added to the covariance. On test mixtures whose endmembers the
model recovers (``tests/test__uncertainty.py``), the noise term alone
covered 0.23-0.70 of the true fractions within ±2σ (the gap dominates);
with the step, 0.89-0.94.

**Errors of the endmembers** (:func:`endmember_covariance`). An unmixing
error is, to first order, each endmember found as a mixture of the true
ones: ``E'_k = E_k + sum_j m_kj (E_j - E_k)`` (a contamination that keeps
the spectrum's total). A pixel ``x = a E`` is then explained by ``a' ≈ a
(I - M)``: ``δa_j = a_j sum_l m_jl - sum_k a_k m_kj``, an error shared by
every pixel of the scan and largest where the contaminated endmember is
abundant. The size of ``m`` comes from the model's own measure of how
well the data determine each endmember, the spread between the starts
(``stability_``, an angle ``θ_k``; the other starts need not fit as well,
see :mod:`hs_aeunmix._selection`): the chosen endmember and another
start's are both off, so one start's error is ``θ_k / √2``,
and independent contaminations of variance ``τ_k²`` towards the other
endmembers turn ``E_k`` by that angle on average when ``τ_k² = θ_k² |E_k|²
/ (2 sum_j |(E_j - E_k)⊥|²)`` (``⊥``: the part orthogonal to ``E_k``).
Models trained from a single start (``init`` other than ``"auto"``) have no
spread and this term is zero; so is it for ``fixed_endmembers``.

Measured (``benchmarks/uncertainty.py``, 10 held-out scenes per
generator, median over scenes, the default's spatial maps): see the README
("Per-pixel uncertainty: calibration on the held-out halves"). What the
approximation still cannot see: the bounds ``0 <= a <= 1``, near which the
interval ``a ± 2σ`` is wider than the truth allows; the averaging of the
spatial layer (its σ are those of a pixel's own fit, an overestimate); and
errors of endmembers that every start shares.
"""

from __future__ import annotations

import numpy as np

from hs_aeunmix._screening import is_count_data, white_noise_variance

# Pixels processed at once: bounds the (pixels x channels) temporaries.
_BATCH = 2048
# Smallest variance of a Poisson channel (counts): an empty channel still
# carries the information of one count.
_MIN_COUNTS = 1.0


def trust_note(spread: np.ndarray, unidentified: np.ndarray) -> str:
    """One line for ``print_info``: how far ``get_uncertainty`` can be trusted.

    ``spread`` and ``unidentified`` come from the stability report. Without
    a spread (one start) the standard deviations see no error of the
    endmembers: a lower bound. With it they are calibrated only on
    average (README, "Per-pixel uncertainty"), and those of ``unidentified``
    endmembers are as wide as the starts disagree.
    """
    if np.isnan(spread).all():
        line = (
            "Uncertainty (get_uncertainty): a lower bound; it sees the noise and "
            "the encoder's fit, not errors of the endmembers (one start measures "
            "none)"
        )
        verdict = "no error bar"
    else:
        line = (
            "Uncertainty (get_uncertainty): noise, the encoder's fit and the "
            "endmembers' spread between starts; calibrated on average, not per "
            "pixel (on held-out test scenes ±2σ held 0.92-1.00 of the true "
            "fractions, ±σ 0.26-0.85 where 0.68 is calibrated)"
        )
        verdict = "wide"
    if len(unidentified):
        listed = ", ".join(str(int(index)) for index in unidentified)
        return (
            f"{line}; {verdict} for endmembers {listed}, which the data do not identify"
        )
    return line


def sum_preserving_basis(n_components: int) -> np.ndarray:
    """Orthonormal columns spanning the vectors whose entries sum to zero."""
    centred = np.eye(n_components) - 1.0 / n_components
    # The leading left singular vectors of the centring projector.
    left, _, _ = np.linalg.svd(centred)
    return left[:, : n_components - 1]


def standard_deviations(covariance: np.ndarray) -> np.ndarray:
    """Square roots of the diagonals of (n_pixels, k, k) covariances (NaN kept)."""
    return np.sqrt(np.maximum(np.diagonal(covariance, axis1=1, axis2=2), 0.0))


def contamination_variances(endmembers: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Variance ``τ_k²`` of each endmember's contamination by the others.

    Independent contaminations ``m_kj`` of variance ``τ_k²`` towards every
    other endmember (``E_k + sum_j m_kj (E_j - E_k)``) turn ``E_k`` by the
    angle ``spread_k / √2`` on average (module docstring). A NaN spread (a
    single start) gives zero; ``τ_k`` is at most one, a contamination by a
    whole other endmember.
    """
    endmembers = np.asarray(endmembers, dtype=np.float64)
    angle = np.nan_to_num(np.asarray(spread, dtype=np.float64)) / np.sqrt(2.0)
    variances = np.zeros(len(endmembers))
    for k, endmember in enumerate(endmembers):
        norm = endmember @ endmember
        if norm <= 0 or angle[k] <= 0:
            continue
        others = np.delete(endmembers, k, axis=0) - endmember
        orthogonal = others - np.outer(others @ endmember / norm, endmember)
        room = float(np.sum(orthogonal**2))
        variances[k] = 1.0 if room <= 0 else min(angle[k] ** 2 * norm / room, 1.0)
    return variances


def endmember_covariance(
    fractions: np.ndarray, endmembers: np.ndarray, spread: np.ndarray
) -> np.ndarray:
    """Covariance of the fractions that errors of the endmembers cause, per pixel.

    With ``δa_j = a_j sum_l m_jl - sum_k a_k m_kj`` and independent ``m_kj``
    of variance ``τ_k²`` (:func:`contamination_variances`), writing ``w_k =
    a_k² τ_k²``: ``Var(δa_j) = sum_{k≠j} w_k + (K - 1) w_j`` and
    ``Cov(δa_i, δa_j) = -(w_i + w_j)``. Each row sums to zero: the errors
    keep the fractions' sum.

    Parameters
    ----------
    fractions : numpy.ndarray of shape (n_pixels, n_components)
    endmembers : numpy.ndarray of shape (n_components, n_channels)
    spread : numpy.ndarray of shape (n_components,)
        Radians between the starts' endmembers (``stability_.spread``).

    Returns
    -------
    numpy.ndarray of shape (n_pixels, n_components, n_components)
    """
    return _contamination_covariance(
        fractions, contamination_variances(endmembers, spread)
    )


def _contamination_covariance(
    fractions: np.ndarray, variances: np.ndarray
) -> np.ndarray:
    """:func:`endmember_covariance` given the contamination variances ``τ_k²``."""
    weights = np.asarray(fractions, dtype=np.float64) ** 2 * variances
    n_components = weights.shape[1]
    covariance = -(weights[:, :, None] + weights[:, None, :])
    diagonal = np.arange(n_components)
    covariance[:, diagonal, diagonal] = (
        weights.sum(axis=1, keepdims=True) + (n_components - 2) * weights
    )
    return covariance


def fraction_covariance(
    spectra: np.ndarray,
    fractions: np.ndarray,
    intensity: np.ndarray,
    endmembers: np.ndarray,
    *,
    background_basis: np.ndarray | None = None,
    background: np.ndarray | None = None,
    sum_to_one: bool = True,
    counts: bool | None = None,
    endmember_spread: np.ndarray | None = None,
) -> np.ndarray:
    """Covariance of each pixel's fractions (module docstring).

    Parameters
    ----------
    spectra : numpy.ndarray of shape (n_pixels, n_channels)
        The spectra, in the units the endmembers reproduce.
    fractions : numpy.ndarray of shape (n_pixels, n_components)
    intensity : numpy.ndarray of shape (n_pixels,)
        ``spectra ≈ intensity * (fractions @ endmembers) + background @
        background_basis``.
    endmembers : numpy.ndarray of shape (n_components, n_channels)
    background_basis : numpy.ndarray of shape (n_terms, n_channels), optional
    background : numpy.ndarray of shape (n_pixels, n_terms), optional
        The fitted background coefficients (with ``background_basis``).
    sum_to_one : bool, default=True
        Whether the fractions are constrained to sum to one.
    counts : bool, optional
        Poisson noise; by default when the spectra are non-negative integers.
    endmember_spread : numpy.ndarray of shape (n_components,), optional
        The endmembers' spread between starts (``stability_.spread``): adds
        the errors of the endmembers (:func:`endmember_covariance`).

    Returns
    -------
    numpy.ndarray of shape (n_pixels, n_components, n_components)
        NaN for pixels without signal.
    """
    spectra = np.asarray(spectra, dtype=np.float64)
    n_pixels, n_channels = spectra.shape
    n_components = endmembers.shape[0]
    if counts is None:
        counts = is_count_data(spectra)
    directions = (
        sum_preserving_basis(n_components) if sum_to_one else np.eye(n_components)
    )
    # Columns of G for a pixel of unit intensity: the fractions' free
    # directions, then the background's basis functions.
    columns = [endmembers.T @ directions]
    n_background = 0
    if background_basis is not None and len(background_basis):
        columns.append(background_basis.T)
        n_background = background_basis.shape[0]
    unit_columns = np.concatenate(columns, axis=1)
    n_free = unit_columns.shape[1] - n_background
    # Products of every pair of columns, channel by channel: F of a pixel is
    # then one row of (inverse variances) @ products.
    products = np.einsum("ci,cj->cij", unit_columns, unit_columns).reshape(
        n_channels, -1
    )
    result = np.empty((n_pixels, n_components, n_components))
    contamination = (
        None
        if endmember_spread is None
        else contamination_variances(endmembers, endmember_spread)
    )
    for start in range(0, n_pixels, _BATCH):
        rows = slice(start, start + _BATCH)
        x = spectra[rows]
        scale = intensity[rows]
        fitted = scale[:, None] * (fractions[rows] @ endmembers)
        if n_background:
            fitted += background[rows] @ background_basis
        if counts:
            variance = np.maximum(fitted, _MIN_COUNTS)
        else:
            variance = white_noise_variance(x)
        weights = 1.0 / variance
        information = (weights @ products).reshape(len(x), *unit_columns.shape[1:] * 2)
        # The fractions' columns scale with the pixel's intensity.
        factor = np.ones((len(x), unit_columns.shape[1]))
        factor[:, :n_free] = scale[:, None]
        information *= factor[:, :, None] * factor[:, None, :]
        inverse = _inverse(information)
        covariance = inverse[:, :n_free, :n_free]
        fractions_covariance = np.einsum(
            "ij,pjk,lk->pil", directions, covariance, directions
        )
        # The encoder's answer is not the pixel's best fit given the
        # endmembers: one Newton step from it estimates how far it is.
        gradient = np.einsum("ci,pc->pi", unit_columns, (x - fitted) * weights) * factor
        step = np.einsum("pij,pj->pi", inverse, gradient)[:, :n_free] @ directions.T
        fractions_covariance += step[:, :, None] * step[:, None, :]
        chi2 = ((x - fitted) ** 2 * weights).sum(axis=1) / max(
            n_channels - unit_columns.shape[1], 1
        )
        inflation = np.maximum(chi2, 1.0)
        fractions_covariance *= inflation[:, None, None]
        if contamination is not None:
            # Shared by every pixel, not noise: the misfit does not scale it.
            fractions_covariance += _contamination_covariance(
                fractions[rows], contamination
            )
        # A pixel without signal says nothing about its fractions.
        fractions_covariance[~(scale > 0)] = np.nan
        result[rows] = fractions_covariance
    return result


def _inverse(matrices: np.ndarray) -> np.ndarray:
    """Inverses of symmetric positive semi-definite matrices (pseudo where singular)."""
    try:
        return np.linalg.inv(matrices)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(matrices, hermitian=True)
