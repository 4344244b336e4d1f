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

Why this and not the spread of the candidates or an ensemble: it costs one
matrix product per pixel batch (no training), it applies to a reapplied
model as to a trained one, and its noise model is the one the data have:

* **counts** (non-negative integers, as EELS and EDS cameras give): Poisson,
  variance = the fitted spectrum (at least one count);
* **anything else**: white noise of each pixel's DER_SNR standard deviation
  (:func:`hs_aeunmix._screening.der_snr_noise`).

Where the model does not reproduce a pixel within its noise (a phase the
endmembers lack, drift, a wrong noise level), the standard deviation is
multiplied by ``sqrt(chi2 / dof)`` when that exceeds one (the Birge ratio):
a pixel the model explains worse is less sure. What the approximation
cannot see: errors of the endmembers themselves (endmembers the data do not
identify, ``stability_``), and the bounds ``0 <= a <= 1``, near which the
interval ``a ± 2σ`` is wider than the truth allows.

The encoder's answer is not each pixel's best fit given the endmembers (an
amortisation gap): one Newton step from it, ``F⁻¹ g`` with ``g`` the
gradient of the log-likelihood, estimates how far it is, and its outer
product is added to the covariance. On test mixtures whose endmembers the
model recovers (``tests/test__uncertainty.py``), the noise term alone
covered 0.23-0.70 of the true fractions within ±2σ (the gap dominates);
with the step, 0.89-0.94.

Measured where the endmembers are not right (``benchmarks/uncertainty.py``,
10 held-out scenes per generator, median over scenes, the default's
spatial maps): coverage 0.77 (family), 0.91 (STEM-EELS) and 0.70 (Raman
compounds), rank correlation of σ with the error 0.02-0.20 (per pixel:
0.66, 0.83, 0.70 and 0.10-0.22). The approximation does not see the
averaging of the spatial layer either. Errors of the endmembers, which this
approximation does not see, dominate there: the standard deviations are
then a lower bound, not a calibrated error bar.
"""

from __future__ import annotations

import numpy as np

from hs_aeunmix._screening import der_snr_noise, is_count_data

# Pixels processed at once: bounds the (pixels x channels) temporaries.
_BATCH = 2048
# Smallest variance of a Poisson channel (counts): an empty channel still
# carries the information of one count.
_MIN_COUNTS = 1.0


def trust_note(unidentified: np.ndarray) -> str:
    """One line for ``print_info``: how far ``get_uncertainty`` can be trusted.

    The standard deviations never see errors of the endmembers (module
    docstring): they are a lower bound everywhere, and no error bar at all
    for the ``unidentified`` endmembers (stability report).
    """
    line = (
        "Uncertainty (get_uncertainty): a lower bound; it sees the noise and "
        "the encoder's fit, not errors of the endmembers"
    )
    if len(unidentified):
        listed = ", ".join(str(int(index)) for index in unidentified)
        return f"{line}, and is no error bar for endmembers {listed}"
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
            noise = der_snr_noise(x) if n_channels > 4 else x.std(axis=1)
            # Noiseless spectra (simulations) would give infinite weights.
            noise = np.maximum(noise, 1e-6 * np.abs(x).max(axis=1) + 1e-30)
            variance = np.broadcast_to(noise[:, None] ** 2, x.shape)
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
